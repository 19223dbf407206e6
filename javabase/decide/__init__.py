"""Stage 3, decide: what a run will do, and why. The inputs of each image and
their digest, the labels that record them, the pure rules (build, reuse from
the engine or the registry, push, skip or refuse) as typed actions, and the
preparation that gathers what the rules need from the engine (read only).
`plan`, `build`, `push` and `save` ask the same function (prepare.plan_actions),
so that what `plan` says is what `build` does.

Imports javabase.plan, javabase.manifest and the shared modules."""
