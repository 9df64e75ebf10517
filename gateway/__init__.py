"""storagegw's gateway: a gRPC server over pluggable storage drivers."""
