"""Stage 5, release: what makes a set of images a release. The lock file,
source provenance, SBOMs, archives for air-gapped sites (save and load),
`inspect` and `prune`.

Imports javabase.publish and below, and the shared modules."""
