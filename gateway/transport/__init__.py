"""Transport security of both listeners: the TLS settings, the certificate
files re-read when they change, the gRPC port's credentials and the signed-URL
listener's SSL context, and the refusal to serve a network in the clear.

Part of the composition root: the fronts receive what is built here (gRPC
server credentials, an ssl.SSLContext) and know nothing of files or settings.
"""
