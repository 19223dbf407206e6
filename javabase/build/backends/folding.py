"""Folded builds: the Dockerfiles of a simple subset, planned as one container
and one commit per RUN, with every metadata instruction (ENV, LABEL, WORKDIR,
USER, CMD, ENTRYPOINT) folded into those commits instead of a container and a
commit of its own, as dockerd's classic builder makes them.

Pure: no engine, no I/O. `parse` reads a Dockerfile the way the classic
builder's parser does (dockerd 20.10, buildkit's dockerfile/parser: `\\`
continuations, comment lines dropped inside them, the first word the
instruction) and returns None for anything outside the subset, which is then
built by the classic builder as before:

- before FROM, ARG only; one FROM (no `AS`, no flags), naming an image or
  `${ARG}` of an ARG before it (the build argument, else its default); not
  `scratch` (its first step would be ADD, outside the subset);
- after FROM: RUN (shell or JSON form), ENV and LABEL (`key=value` pairs,
  values plain or double-quoted, no `$`), WORKDIR (an absolute path), USER,
  CMD and ENTRYPOINT (JSON form); nothing else (no ARG, ADD, COPY, EXPOSE,
  VOLUME, ONBUILD, HEALTHCHECK, SHELL, ...), no parser directives.

`plan` turns the instructions and the parent image's config into commits: the
config each RUN runs with, and the config each commit carries, computed as the
classic builder computes them (ENV replaces a key in place or appends it;
ENTRYPOINT drops the parent's CMD unless this Dockerfile sets CMD; WORKDIR
makes its directory when missing)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from ...engine import FOLDED

_CONTINUATION = re.compile(r"\\[ \t]*$")
_COMMENT = re.compile(r"^[ \t]*#")
_DIRECTIVE = re.compile(r"^#[ \t]*(syntax|escape)[ \t]*=", re.IGNORECASE)
_ARG_REF = re.compile(r"^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$")
_KEY = re.compile(r"[^\s=\"'$\\]+")
_PLAIN = re.compile(r"[^\s\"'$\\]*")
_QUOTED = re.compile(r'"((?:[^"\\$]|\\["\\])*)"')
_PATH = re.compile(r"^/[^\s\"'$\\]*$")
_USER = re.compile(r"^[^\s\"'$\\]+$")


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case: RUN, ENV, ...
    text: str  # the instruction as the classic builder logs it: `ENV A=b`
    words: tuple[str, ...] = ()  # RUN/CMD/ENTRYPOINT: argv; WORKDIR/USER: the value
    pairs: tuple[tuple[str, str], ...] = ()  # ENV/LABEL: key, value


@dataclass(frozen=True)
class Fold:
    base: str  # the image FROM names (a reference or an image ID)
    head: tuple[str, ...]  # the ARG and FROM instructions, as logged (the classic builder counts them as steps)
    steps: tuple[Instruction, ...]


@dataclass(frozen=True)
class Config:
    """The part of an image config the subset changes (the engine's names)."""

    env: tuple[str, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    user: str = ""
    workdir: str = ""
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None

    @classmethod
    def of(cls, config: Mapping[str, object]) -> Config:
        """From an image config as the engine's inspect gives it."""
        labels = config.get("Labels")
        pairs = sorted((str(k), str(v)) for k, v in labels.items()) if isinstance(labels, Mapping) else []
        return cls(env=tuple(str(e) for e in _seq(config.get("Env"))), labels=tuple(pairs),
                   user=str(config.get("User") or ""), workdir=str(config.get("WorkingDir") or ""),
                   cmd=_words(config.get("Cmd")), entrypoint=_words(config.get("Entrypoint")))


@dataclass(frozen=True)
class Commit:
    """One container and its commit: the RUN it runs (None: none, a container
    never started), the config it runs with, the config committed, the
    directories WORKDIR asks for before the RUN and after it (each made when
    missing, as the classic builder's WORKDIR step makes it) and the
    instructions folded into it (the history comment names them)."""

    run: tuple[str, ...] | None
    run_as: Config
    config: Config
    before: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    instructions: tuple[str, ...] = field(default=())


# Build arguments the classic builder passes to every RUN without an ARG for them.
PREDEFINED_ARGS = frozenset(n for name in ("HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY")
                            for n in (name, name.lower()))


def parse(dockerfile: str, build_args: Mapping[str, str]) -> Fold | None:
    """The Dockerfile's FROM and instructions, or None when it is outside the subset."""
    lines = _logical_lines(dockerfile)
    if lines is None:
        return None
    args: dict[str, str] = {}
    base: str | None = None
    head: list[str] = []
    steps: list[Instruction] = []
    for keyword, rest in lines:
        if base is None:
            head.append(f"{keyword} {rest}")
            if keyword == "ARG" and _arg(rest, build_args, args):
                continue
            if keyword != "FROM":
                return None
            base = _from(rest, args)
            if base is None:
                return None
            continue
        step = _instruction(keyword, rest)
        if step is None:
            return None
        steps.append(step)
    if base is None or PREDEFINED_ARGS & set(build_args):
        return None
    return Fold(base, tuple(head), tuple(steps))


def _logical_lines(text: str) -> list[tuple[str, str]] | None:
    """(KEYWORD, rest) of every instruction, continuations joined as the parser joins them."""
    raw = text.splitlines()
    if raw and _DIRECTIVE.match(raw[0]):
        return None
    out: list[tuple[str, str]] = []
    index = 0
    while index < len(raw):
        line = raw[index].lstrip(" \t")
        index += 1
        if not line or line.startswith("#"):
            continue
        joined, more = _CONTINUATION.sub("", line), bool(_CONTINUATION.search(line))
        while more and index < len(raw):
            part = raw[index]
            index += 1
            if _COMMENT.match(part) or not part.strip():
                continue
            more = bool(_CONTINUATION.search(part))
            joined += _CONTINUATION.sub("", part)
        keyword, _, rest = joined.strip().partition(" ")
        if "\t" in keyword:
            return None
        out.append((keyword.upper(), rest.strip()))
    return out


def _arg(rest: str, build_args: Mapping[str, str], args: dict[str, str]) -> bool:
    """An ARG before FROM (name, name=value, name="value"); False when not in the subset."""
    name, eq, value = rest.partition("=")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        return False
    default = _value(value) if eq else ""
    if default is None:
        return False
    args[name] = build_args.get(name, default)
    return True


def _from(rest: str, args: Mapping[str, str]) -> str | None:
    words = rest.split()
    if len(words) != 1 or words[0].startswith("--"):
        return None
    ref = words[0]
    found = _ARG_REF.match(ref)
    if found:
        ref = args.get(found.group(1), "")
    if not ref or "$" in ref or ref == "scratch":
        return None
    return ref


def _instruction(keyword: str, rest: str) -> Instruction | None:
    text = f"{keyword} {rest}"
    if keyword == "RUN":
        argv = _json_words(rest)
        if argv is None and not rest.startswith("["):
            argv = ("/bin/sh", "-c", rest) if rest else None
        return Instruction(keyword, text, words=argv) if argv else None
    if keyword in ("ENV", "LABEL"):
        pairs = _pairs(rest)
        return Instruction(keyword, text, pairs=pairs) if pairs else None
    if keyword == "WORKDIR":
        clean = _PATH.match(rest) and not {".", ".."} & set(rest.split("/"))
        return Instruction(keyword, text, words=(rest,)) if clean else None
    if keyword == "USER":
        return Instruction(keyword, text, words=(rest,)) if _USER.match(rest) else None
    if keyword in ("CMD", "ENTRYPOINT"):
        argv = _json_words(rest)
        return Instruction(keyword, text, words=argv) if argv is not None else None
    return None


def _pairs(rest: str) -> tuple[tuple[str, str], ...] | None:
    """`key=value` pairs, values plain or double-quoted without `$`; None otherwise."""
    pairs: list[tuple[str, str]] = []
    position = 0
    while position < len(rest):
        key = _KEY.match(rest, position)
        if key is None or rest[key.end():key.end() + 1] != "=":
            return None
        position = key.end() + 1
        quoted = _QUOTED.match(rest, position)
        found = quoted or _PLAIN.match(rest, position)
        if found is None:
            return None
        value = re.sub(r"\\([\"\\])", r"\1", quoted.group(1)) if quoted else found.group(0)
        pairs.append((key.group(0), value))
        position = found.end()
        if position < len(rest) and not rest[position].isspace():
            return None
        while position < len(rest) and rest[position].isspace():
            position += 1
    return tuple(pairs) or None


def _value(text: str) -> str | None:
    quoted = _QUOTED.fullmatch(text)
    if quoted:
        return re.sub(r"\\([\"\\])", r"\1", quoted.group(1))
    return text if _PLAIN.fullmatch(text) else None


def _json_words(rest: str) -> tuple[str, ...] | None:
    if not rest.startswith("["):
        return None
    try:
        words = json.loads(rest)
    except ValueError:
        return None
    if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
        return None
    return tuple(words)


def _seq(value: object) -> Sequence[object]:
    return value if isinstance(value, list | tuple) else ()


def _words(value: object) -> tuple[str, ...] | None:
    return tuple(str(w) for w in value) if isinstance(value, list | tuple) else None


def plan(fold: Fold, parent: Mapping[str, object]) -> list[Commit] | None:
    """The commits of `fold` built on a parent whose config (as the engine's
    inspect gives it) is `parent`: one per RUN, each running with the config
    instructions before it in effect, those after the last RUN folded into the
    last commit; one commit of a container never started when there is no RUN.
    None when the result could not equal the classic builder's: a parent with
    ONBUILD triggers, a SHELL or volumes, or a USER cleared after a RUN ran as
    another user."""
    if parent.get("OnBuild") or parent.get("Shell") or parent.get("Volumes"):
        return None
    state, cmd_set = Config.of(parent), False
    commits: list[Commit] = []
    pending: list[str] = []
    mkdirs: list[str] = []
    for step in fold.steps:
        pending.append(step.text)
        if step.keyword == "RUN":
            commits.append(Commit(step.words, state, state, before=tuple(mkdirs), instructions=tuple(pending)))
            pending, mkdirs = [], []
            continue
        state, cmd_set = _apply(step, state, cmd_set)
        if step.keyword == "WORKDIR":
            mkdirs.append(state.workdir)
    if not commits:
        commits.append(Commit(None, state, state, before=tuple(mkdirs), instructions=tuple(pending)))
    else:
        last = commits[-1]
        commits[-1] = replace(last, config=state, after=tuple(mkdirs), instructions=last.instructions + tuple(pending))
    if any(c.config.user == "" and c.run_as.user != "" for c in commits):
        return None
    return commits


def _apply(step: Instruction, state: Config, cmd_set: bool) -> tuple[Config, bool]:
    """The config after one config instruction, as the classic builder computes it."""
    if step.keyword == "ENV":
        env = list(state.env)
        for key, value in step.pairs:
            entry = f"{key}={value}"
            at = next((i for i, e in enumerate(env) if e.partition("=")[0] == key), None)
            if at is None:
                env.append(entry)
            else:
                env[at] = entry
        return replace(state, env=tuple(env)), cmd_set
    if step.keyword == "LABEL":
        return replace(state, labels=tuple(sorted({**dict(state.labels), **dict(step.pairs)}.items()))), cmd_set
    if step.keyword == "WORKDIR":
        return replace(state, workdir=step.words[0]), cmd_set
    if step.keyword == "USER":
        return replace(state, user=step.words[0]), cmd_set
    if step.keyword == "CMD":
        return replace(state, cmd=step.words), True
    return replace(state, entrypoint=step.words, cmd=state.cmd if cmd_set else None), cmd_set


def commit_body(config: Config) -> dict[str, object]:
    """The config to send with the engine's commit (POST /commit's body). The
    engine fills what the body leaves empty from the container's config, whose
    Entrypoint is the RUN: an empty Entrypoint is sent as [] (the engine keeps it
    empty) and Cmd as null."""
    return {"Env": list(config.env), "Labels": dict(config.labels), "User": config.user,
            "WorkingDir": config.workdir, "Cmd": list(config.cmd) if config.cmd else None,
            "Entrypoint": list(config.entrypoint) if config.entrypoint else []}


def comment(commit: Commit) -> str:
    """The history comment of a folded commit: the instructions it holds."""
    return FOLDED + "; ".join(" ".join(i.split()) for i in commit.instructions)

