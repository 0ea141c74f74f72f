"""Message size limits shared by the KubeMQ sources, targets, the send client and the HTTP API."""

MIB = 1024 * 1024
# The KubeMQ server's own body limit; the SDK's 4 MiB default would silently refuse real objects.
SERVER_MESSAGE_LIMIT = 100 * MIB
# What a source accepts from the wire: anything a server may deliver (gRPC's own ceiling). A message
# over ``max_message_size`` is then refused by the source, with a reason, instead of failing the
# stream every time it is delivered (a poison message that would stop the binding).
RECEIVE_LIMIT = 2**31 - 1
