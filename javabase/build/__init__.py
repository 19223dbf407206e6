"""Stage 6, build: carrying out a run. The run itself (verify artifacts,
decide, build each image as soon as its parent is done, tag, push), artifacts
and their verified cache, the reproducible rewrite of a built image, the run
lock per engine, and the backends (backends/docker_sdk.py is the only module
that imports docker).

Imports every stage below it and the shared modules."""
