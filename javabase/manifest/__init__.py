"""Stage 1, manifest: images.yaml -> a validated, frozen description of every
image (javabase.manifest.model). YAML with line numbers, the JSON Schema and
its messages, expansion of defaults and versions, the one rule that keeps a
manifest's value inside its Dockerfile instruction or shell word, Docker
reference grammar, where templates are found.

Pure: never touches the engine or the network. Imports only javabase's shared
modules (errors, files, settings, report, engine, clock)."""
