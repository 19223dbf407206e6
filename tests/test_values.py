"""One rule per position for every value that reaches a Dockerfile or a shell
(javabase.manifest.values), checked filter by filter and then template
variable by template variable: each field of the model, set to a value full of
what the Dockerfile parser and the shell would interpret, either arrives in
the rendered Dockerfile exactly as written or is refused; no instruction is
added, removed or split. A field added to the model without a position here
fails the test."""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import SHA_A
from javabase.errors import RenderError
from javabase.manifest.model import Account, Artifact, Image, Manifest
from javabase.manifest.values import Unrepresentable, quoted, refusal, sed_substitute, shell, word
from javabase.plan.render import render_image
from javabase.plan.templates import environment
from paths import TEMPLATES_DIR

HOSTILE = "a b\"c'd$e${HOME}$1\\f&g|h;i`j#k"


def test_quoted_keeps_every_character_and_only_name_references_expand() -> None:
    assert quoted('-Da=$b') == '"-Da=\\$b"'
    assert quoted("/usr/java/bin:${PATH}") == '"/usr/java/bin:${PATH}"'
    assert quoted('JRE "25" for $TEAM \\ ${1}') == '"JRE \\"25\\" for \\$TEAM \\\\ \\${1}"'


def test_shell_quotes_only_what_the_shell_would_read() -> None:
    assert shell("tzdata") == "tzdata"
    assert shell("openjdk>1.0") == "'openjdk>1.0'"
    assert shlex.split(shell(HOSTILE)) == [HOSTILE]


def test_sed_substitute_takes_the_replacement_literally(tmp_path: Path) -> None:
    expression = sed_substitute(HOSTILE, "https\\?://dl-cdn.alpinelinux.org/alpine")
    done = subprocess.run(["sed", "-e", *shlex.split(expression)], input="https://dl-cdn.alpinelinux.org/alpine/v3\n",
                          capture_output=True, text=True, check=True)
    assert done.stdout == HOSTILE + "/v3\n"


@pytest.mark.parametrize(("value", "reason"), [
    ("/opt app", "has a space or tab, which would make it several arguments of its instruction"),
    ("/opt/$HOME", "has a $, which the Dockerfile parser would replace with a variable's value"),
    ("/opt\\", "has '\\\\', which an unquoted Dockerfile argument may not hold; use letters, digits and "
               ". _ / : @ % + = , ~ -"),
    ("/opt\nRUN x", "contains a line break, which would start a new Dockerfile instruction"),
])
def test_a_word_refuses_what_the_parser_would_split_or_replace(value: str, reason: str) -> None:
    assert refusal("word", value) == reason
    with pytest.raises(Unrepresentable):
        word(value)


# Each field of the model that can reach a template, and its position there.
IMAGE_FIELDS = {
    "name": "internal", "entry": "internal", "key": "comment", "line": "internal", "from_ref": "word",
    "parent": "internal", "template": "internal", "description": "quoted", "version": "internal",
    "packages": "shell", "artifacts": "artifact", "env": "quoted", "labels": "quoted", "workdir": "word",
    "user": "word", "entrypoint": "exec_form", "cmd": "exec_form", "run": "command", "build_args": "quoted",
    "network": "internal", "tags": "internal", "immutable_tags": "internal", "platforms": "internal",
    "account": "word", "fonts": "internal", "font_packages": "shell", "tests": "internal", "from_line": "internal",
}
ARTIFACT_FIELDS = {"url": "internal", "path": "internal", "sha256": "internal", "filename": "word", "dest": "word",
                   "unpack": "internal", "key": "internal", "line": "internal", "platform": "internal",
                   "certificate": "internal"}
TEMPLATES = sorted(p.name.removesuffix(".Dockerfile.j2") for p in TEMPLATES_DIR.glob("*.Dockerfile.j2"))


def test_every_field_of_the_model_has_a_position() -> None:
    assert sorted(f.name for f in dataclasses.fields(Image)) == sorted(IMAGE_FIELDS)
    assert sorted(f.name for f in dataclasses.fields(Artifact)) == sorted(ARTIFACT_FIELDS)


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", dockerfile)
    return [(line.split(" ", 1)[0], line.split(" ", 1)[1] if " " in line else "")
            for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def shape(dockerfile: str) -> list[tuple[str, int]]:
    """The instructions and how many words each has (shell words for RUN, pairs for ENV and LABEL)."""
    out = []
    for keyword, args in instructions(dockerfile):
        if keyword == "RUN":
            count = 0  # a shell command: its words are checked by written_values
        elif keyword in ("ENTRYPOINT", "CMD"):
            count = len(json.loads(args))
        elif keyword in ("ENV", "LABEL", "ARG"):
            count = len(shlex.split(args))
        else:
            count = len(args.split())
        out.append((keyword, count))
    return out


def parsed(raw: str) -> str:
    """A double-quoted ENV/LABEL/ARG value as the Dockerfile parser reads it: a
    backslash escapes the next character; an unescaped $name or ${...} is
    replaced by a variable's value (shown as <var>), except a ${NAME} reference,
    which the manifest writes on purpose and is kept as written."""
    out, index = [], 0
    while index < len(raw):
        char = raw[index]
        if char == "\\" and index + 1 < len(raw):
            out.append(raw[index + 1])
            index += 2
            continue
        reference = re.match(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", raw[index:])
        if reference:
            out.append(reference.group(0))
            index += reference.end()
            continue
        replaced = re.match(r"\$(?:[A-Za-z_][A-Za-z0-9_]*|\{[^}]*\})", raw[index:])
        if replaced:
            out.append("<var>")
            index += replaced.end()
            continue
        out.append(char)
        index += 1
    return "".join(out)


def written_values(dockerfile: str) -> list[str]:
    """Every value as the parser would read it: ENV/LABEL/ARG values, shell words, exec-form arguments."""
    out: list[str] = []
    for keyword, args in instructions(dockerfile):
        if keyword in ("ENV", "LABEL", "ARG"):
            out += [parsed(raw) for raw in re.findall(r'[A-Za-z0-9_.\-/]+="((?:[^"\\]|\\.)*)"', args)]
        elif keyword in ("ENTRYPOINT", "CMD"):
            out += json.loads(args)
        elif keyword == "RUN" and not args.startswith("["):
            out += shlex.split(args)
    return out


def with_value(image: Image, field: str, value: str) -> Image:
    """`image` with `field` set to `value` (in a pair for env, labels and build
    args; as the destination of its artifact for artifacts)."""
    if field == "artifacts":
        return dataclasses.replace(image, artifacts=(dataclasses.replace(image.artifacts[0], dest=value),))
    if field in ("env", "labels", "build_args"):
        return dataclasses.replace(image, **{field: (("K", value),)})
    if field in ("packages", "font_packages", "run", "entrypoint", "cmd"):
        return dataclasses.replace(image, **{field: (value,)})
    if field == "account":  # its name, group and home are words of the template's shell commands
        return dataclasses.replace(image, account=Account(value, 10001, value, 10001, value))
    return dataclasses.replace(image, **{field: value})


@pytest.mark.parametrize("template", TEMPLATES)
@pytest.mark.parametrize("field", [f for f, position in IMAGE_FIELDS.items() if position != "internal"])
def test_a_value_arrives_as_written_or_is_refused(template: str, field: str,
                                                   valid: Callable[[str], Manifest]) -> None:
    manifest = valid(f"""\
        schema: 1
        registry: r
        mirrors: {{apk: "https://mirror.example/alpine", apt: "https://mirror.example"}}
        images:
          img:
            from: alpine:3.22
            template: {template}
            packages: [tzdata]
            artifacts: [{{url: "https://x.example/f.tar.gz", sha256: "{SHA_A}", unpack: true}}]
            tags: ["1"]
        """)
    image, env = manifest.images["img"], environment(manifest.templates)
    plain = render_image(env, manifest, with_value(image, field, "/plain"))
    if plain == render_image(env, manifest, image) and field not in ("from_ref", "key"):
        return  # this template does not use the field
    position = IMAGE_FIELDS[field]
    try:
        rendered = render_image(env, manifest, with_value(image, field, HOSTILE))
    except RenderError as exc:
        assert position in ("word", "artifact"), f"{field} ({position}) is refused, not written: {exc}"
        assert str(exc).endswith("; fix the manifest")
        return
    assert position not in ("word", "artifact"), f"{field}: a word with spaces was written:\n{rendered}"
    assert shape(rendered) == shape(plain), f"{field} changed the Dockerfile's instructions:\n{rendered}"
    if position in ("quoted", "shell", "exec_form"):
        assert HOSTILE in written_values(rendered), f"{field} did not arrive as written:\n{rendered}"
