"""The gRPC edge: protobuf in and out, status codes, interceptors and the server's lifecycle."""
