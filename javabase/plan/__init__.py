"""Stage 2, plan: a manifest -> what is built, in which order, from which
Dockerfile. Build order and units, Jinja2 templates and their hashes, the
rendered Dockerfiles and builds/ on disk, the scheduler that runs work over the
tree of images, and the CI pipelines generated from the plan.

Pure except for writing builds/. Imports javabase.manifest and the shared
modules, nothing above."""
