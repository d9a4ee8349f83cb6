"""gRPC: servicers (thin), the server, converters between messages and the domain."""
