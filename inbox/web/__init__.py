"""The web edge room: what every HTTP and socket surface shares.

Public: `http` (one JSON error shape, bounded bodies, token auth, `listen`),
`client_address` (the client's address honouring trusted proxies), `untrusted` (reading
what outsiders send), `ratelimit` (the one rate limiter, shared through Redis when
scaled out).
"""
