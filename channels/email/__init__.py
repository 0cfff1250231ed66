"""The email channel: inbound over SMTP (smtp_server) and IMAP (imap), parsed by a pure
MIME parser (parse, limits, text, sniff), outbound through an SMTP relay (compose,
sender), with signed reply addresses (tokens). `channel.EmailChannel` wires them from
`settings.read_settings(...)`."""
