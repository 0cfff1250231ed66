"""The `omnidesk` command's subcommands, one module per group: `service` (serve, migrate,
demo), `agents`, `tokens`, `checks` (config check, rules, form snippet). Each module's
`add_commands` adds its parsers; `omnidesk.cli` assembles them and runs one."""
