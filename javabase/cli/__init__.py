"""Stage 7, cli: the commands, grouped (define:
validate, render, lock, plan, ci; ship: build, build-all, push; release: save,
load, prune, inspect; registry: doctor), what they share (common), the Invoke
tasks that call them (tasks) and the installed `javabase` program (program).

Resolves flags and the environment once into Settings and wires the stages
together; may import every stage."""
