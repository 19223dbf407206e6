"""Stage 4, publish: putting images into a registry. The Distribution HTTP
API client (auth per host, TLS with certs.d, retries), credentials found the
way docker finds them, OCI documents (manifests, indexes, deterministic
layers), the compressed-layer cache, the pusher that carries out decide's push
actions, and referrers (artifacts attached to an image).

The registry client and the engine are parameters. Imports javabase.decide and
below, and the shared modules."""
