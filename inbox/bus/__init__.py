"""The bus room: events and presence shared between processes.

Public: `backends` (`EventBus`, the in-process and Redis backends, `open_bus`) and
`presence` (who is connected where: agent sockets, visitors in rooms, viewers). The event
names and payloads themselves are the domain's vocabulary in `inbox.events`.
"""
