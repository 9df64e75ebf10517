"""CDN clients beside the drivers: signers of CloudFront and BunnyCDN URLs,
and their cache-invalidation APIs. They know nothing of the gateway's
configuration or wire protocols; gateway/cdn_config.py builds them and the
core uses them through gateway/core/cdn.py's protocols."""
