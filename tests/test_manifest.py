"""Validation: every error is one line with file, line and key, and all are
reported at once."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest

from conftest import BASE, SHA_A, SHA_B
from javabase.manifest.expand import derive_major
from javabase.manifest.model import Manifest
from paths import PROJECT_ROOT

Problems = Callable[[str], list[str]]
C64 = "c" * 64


def test_base_manifest_is_valid(valid: Callable[[str], Manifest]) -> None:
    manifest = valid(BASE)
    assert list(manifest.images) == ["root", "jre8", "jre17"]
    jre17 = manifest.images["jre17"]
    assert jre17.parent == "root"
    assert jre17.tags == ("17", "17.0.11_9")
    assert dict(jre17.env) == {"LANG": "C.UTF-8", "JAVA_HOME": "/usr/java/jdk-17.0.11+9-jre"}
    assert manifest.references(jre17) == ["repo.abc.com/base/jre17:17", "repo.abc.com/base/jre17:17.0.11_9"]
    assert manifest.references(jre17, "127.0.0.1:5000")[0] == "127.0.0.1:5000/base/jre17:17"
    [artifact] = jre17.artifacts
    assert (artifact.filename, artifact.dest, artifact.unpack, artifact.sha256) == (
        "jre17.tar.gz", "/usr/java/", True, SHA_B)
    assert manifest.images["jre8"].artifacts[0].sha256 == SHA_A


@pytest.mark.parametrize(("version", "major"), [("8u412b08", "8"), ("1.8.0_412", "8"), ("17.0.11_9", "17"),
                                                 ("21", "21")])
def test_major_is_derived_from_the_version(version: str, major: str) -> None:
    assert derive_major(version) == major


def test_bad_sha256_names_line_and_key(problems: Problems) -> None:
    assert problems(BASE.replace(f"sha256: {SHA_A}", "sha256: abc")) == [
        "images.yaml:24: images.jre.versions[0].sha256: 'abc' is not 64 hex digits; "
        "copy the sha256 published with the tarball"
    ]


def test_from_unknown_image_suggests_a_name(problems: Problems) -> None:
    assert problems(BASE.replace("from: root", "from: rot")) == [
        "images.yaml:18: images.jre.from: 'rot' is not an image of this manifest; did you mean 'root'? "
        "(an outside image needs a tag or digest, e.g. alpine:3.20)"
    ]


def test_from_an_entry_with_versions_must_name_one(problems: Problems) -> None:
    text = BASE + "  app:\n    from: jre\n    template: layer\n    tags: [x]\n"
    assert problems(text) == [
        "images.yaml:33: images.app.from: 'jre' expands into several images (jre8, jre17); name one of them"
    ]


def test_dependency_cycle_is_printed(problems: Problems) -> None:
    text = BASE.replace(f"from: alpine:3.20@sha256:{C64}", "from: jre8")
    assert problems(text) == [
        "images.yaml:18: images.jre.from: dependency cycle: jre8 -> root -> jre8 "
        "(each is built FROM the next); break it"
    ]


def test_self_reference_is_a_cycle(problems: Problems) -> None:
    text = BASE.replace(f"from: alpine:3.20@sha256:{C64}", "from: root")
    assert problems(text) == ["images.yaml:13: images.root.from: image 'root' is built FROM itself"]


def test_two_images_with_one_repository_tag(problems: Problems) -> None:
    assert problems(BASE.replace("version: 17.0.11_9", "version: 8u999")) == [
        "images.yaml:25: images.jre.versions[1]: image name 'jre8' is produced twice, also by "
        "images.jre.versions[0] (line 21); two images would push the same repository:tag; rename one"
    ]


def test_same_tag_twice_in_one_image(problems: Problems) -> None:
    assert problems(BASE.replace('tags: ["3.20"]', 'tags: ["3.20", "3.20"]')) == [
        "images.yaml:16: images.root.tags[1]: tag '3.20' is listed twice for image 'root'"
    ]


def test_invalid_tag(problems: Problems) -> None:
    assert problems(BASE.replace('tags: ["3.20"]', 'tags: ["-bad"]')) == [
        "images.yaml:16: images.root.tags[0]: tag '-bad' is not a valid Docker tag; use up to 128 letters, "
        "digits, '_', '.' and '-', not starting with '.' or '-'"
    ]


def test_invalid_namespace(problems: Problems) -> None:
    assert problems(BASE.replace("namespace: base", "namespace: Base")) == [
        "images.yaml:3: namespace: 'Base' is not a valid Docker repository path; use lower-case letters, "
        "digits, '.', '_', '-' and '/'"
    ]


def test_invalid_image_name_is_reported_once(problems: Problems) -> None:
    text = BASE.replace("  root:", "  Root:").replace("from: root", "from: Root")
    assert problems(text) == [
        "images.yaml:12: images.Root: 'Root' is not a valid image name; use lower-case letters and digits, "
        "separated by '.', '_' or '-'"
    ]


def test_invalid_registry(problems: Problems) -> None:
    assert problems(BASE.replace("registry: repo.abc.com", "registry: https://repo.abc.com/")) == [
        "images.yaml:2: registry: 'https://repo.abc.com/' is not a registry host; write HOST or HOST:PORT, "
        "e.g. repo.abc.com"
    ]


def test_unknown_template(problems: Problems) -> None:
    assert problems(BASE.replace("template: alpine-glibc", "template: alpine-glib")) == [
        "images.yaml:14: images.root.template: unknown template 'alpine-glib'; did you mean 'alpine-glibc'?"
    ]


def test_outside_reference_with_a_bad_digest(problems: Problems) -> None:
    assert problems(BASE.replace(f"sha256:{C64}", "sha256:abc")) == [
        "images.yaml:13: images.root.from: 'alpine:3.20@sha256:abc' has digest 'sha256:abc', which is not "
        "sha256: followed by 64 lower-case hex digits"
    ]


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("LANG: C.UTF-8", 'LANG: "C.UTF-8\\nRUN rm -rf /"',
         "images.yaml:8: defaults.env.LANG: value 'C.UTF-8\\nRUN rm -rf /' contains a line break, "
         "which would start a new Dockerfile instruction; remove it"),
        ("LANG: C.UTF-8", 'LANG: "a\\0b"',
         "images.yaml:8: defaults.env.LANG: value 'a\\x00b' contains a NUL byte; remove it"),
        ("template: alpine-glibc", 'template: alpine-glibc\n    description: "root\\nUSER root"',
         "images.yaml:15: images.root.description: description 'root\\nUSER root' contains a line break, which "
         "would start a new Dockerfile instruction; remove it"),
        ("    env:\n      JAVA_HOME", "    workdir: '/opt/app\\'\n    env:\n      JAVA_HOME",
         "images.yaml:29: images.jre.workdir: workdir '/opt/app\\\\' has '\\\\', which an unquoted Dockerfile "
         "argument may not hold; use letters, digits and . _ / : @ % + = , ~ -; remove it"),
        ("packages: [bash]", 'packages: ["bash\\nRUN x"]',
         "images.yaml:15: images.root.packages[0]: package 'bash\\nRUN x' contains a line break, which would "
         "start a new Dockerfile instruction; remove it"),
        ("    env:\n      JAVA_HOME", "    workdir: \"/opt'\"\n    env:\n      JAVA_HOME",
         "images.yaml:29: images.jre.workdir: workdir \"/opt'\" has \"'\", which an unquoted Dockerfile argument "
         "may not hold; use letters, digits and . _ / : @ % + = , ~ -; remove it"),
        ("    env:\n      JAVA_HOME", "    workdir: /opt/$HOME\n    env:\n      JAVA_HOME",
         "images.yaml:29: images.jre.workdir: workdir '/opt/$HOME' has a $, which the Dockerfile parser would "
         "replace with a variable's value; remove it"),
        ("        url: https://example.invalid/jre8.tar.gz",
         "        url: https://example.invalid/jre8.tar.gz\n        dest: '/ https://x/evil.tar.gz /'",
         "images.yaml:24: images.jre.versions[0].dest: dest '/ https://x/evil.tar.gz /' has a space or tab, which "
         "would make it several arguments of its instruction; remove it"),
        ("        url: https://example.invalid/jre8.tar.gz", "        url: https://ci:s3cr3t@example.invalid/jre8.tar.gz",
         "images.yaml:23: images.jre.versions[0].url: 'https://example.invalid/jre8.tar.gz' carries a user name or "
         "password; it would be shown in labels, logs and reports. Serve the file without credentials, or "
         "download it next to the manifest and use `path:`"),
        ("org.opencontainers.image.vendor: ABC", "io.javabase.input-digest: forged",
         "images.yaml:10: defaults.labels.io.javabase.input-digest: label 'io.javabase.input-digest' is set by "
         "javabase (it records the build); remove it"),
        ("org.opencontainers.image.vendor: ABC", "org.opencontainers.image.base.digest: sha256:forged",
         "images.yaml:10: defaults.labels.org.opencontainers.image.base.digest: label "
         "'org.opencontainers.image.base.digest' is set by javabase (it records the build); remove it"),
        ("    env:\n      JAVA_HOME", '    user: "app\\nUSER root"\n    env:\n      JAVA_HOME',
         "images.yaml:29: images.jre.user: user 'app\\nUSER root' contains a line break, which would start a "
         "new Dockerfile instruction; remove it"),
        ("        url: https://example.invalid/jre8.tar.gz", "        path: \"jre8.tar.gz\\n\"",
         "images.yaml:23: images.jre.versions[0].path: path 'jre8.tar.gz\\n' contains a line break, which would "
         "start a new Dockerfile instruction; remove it"),
    ],
    ids=["env-newline", "env-nul", "description-newline", "workdir-backslash", "package-newline",
         "workdir-quote", "workdir-dollar", "dest-space", "url-userinfo", "label-javabase", "label-base-digest",
         "user-newline", "path-newline"],
)
def test_values_cannot_break_out_of_their_instruction(problems: Problems, old: str, new: str,
                                                      expected: str) -> None:
    assert old in BASE
    assert problems(BASE.replace(old, new)) == [expected]


def test_duplicate_keys(problems: Problems) -> None:
    text = BASE.replace("  jre:\n", "  root:\n    from: scratch\n    template: rootfs\n    tags: [x]\n  jre:\n")
    assert problems(text) == ["images.yaml:17: images.root: duplicate key (first at line 12); remove one of them"]


def test_yaml_syntax_error_has_its_line(problems: Problems) -> None:
    assert problems(BASE.replace("packages: [bash]", "packages: [bash")) == [
        "images.yaml:16: YAML syntax error: did not find expected ',' or ']'; fix the YAML"
    ]


def test_empty_file(problems: Problems) -> None:
    assert problems("") == ["images.yaml:1: the file is empty; start from the images.yaml in docs/manifest.md"]


def test_top_level_not_a_mapping(problems: Problems) -> None:
    assert problems("- a\n- b\n") == [
        "images.yaml:1: the top level is a list, not a mapping; start with `schema: 1`, `registry:` and `images:`"
    ]


def test_unsupported_schema_version(problems: Problems) -> None:
    assert problems(BASE.replace("schema: 1", "schema: 2")) == [
        "images.yaml:1: schema: unsupported schema version 2; this javabase reads schema 1"
    ]


def test_unknown_key_suggests_the_right_one(problems: Problems) -> None:
    assert problems(BASE.replace("    packages: [bash]", "    packges: [bash]")) == [
        "images.yaml:15: images.root.packges: unknown key; did you mean 'packages'?"
    ]


def test_missing_required_key(problems: Problems) -> None:
    assert problems(BASE.replace("    template: jre\n", "")) == [
        "images.yaml:17: images.jre: missing required key 'template'"
    ]


def test_unknown_placeholder(problems: Problems) -> None:
    assert problems(BASE.replace("{major}", "{majr}")) == [
        "images.yaml:31: images.jre.tags[0]: unknown placeholder {majr}; available here: {entry}, {home}, "
        "{major}, {name}, {version} (write ${majr} for a Docker variable)"
    ]


def test_url_and_path_together(problems: Problems) -> None:
    text = BASE.replace("        url: https://example.invalid/jre8.tar.gz\n",
                        "        url: https://example.invalid/jre8.tar.gz\n        path: x.tar.gz\n")
    assert problems(text) == ["images.yaml:21: images.jre.versions[0]: give exactly one of `url` and `path`"]


def test_wrong_type_is_explained(problems: Problems) -> None:
    assert problems(BASE.replace("packages: [bash]", "packages: bash")) == [
        "images.yaml:15: images.root.packages: expected a list, got 'bash'"
    ]


def test_every_problem_is_reported_at_once(problems: Problems) -> None:
    text = (BASE.replace(f"sha256: {SHA_A}", "sha256: abc")
            .replace("template: alpine-glibc", "template: nope")
            .replace("namespace: base", "namespace: Base"))
    assert [line.split(":")[1] for line in problems(text)] == ["3", "14", "24"]


def test_missing_file_is_one_line(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from javabase.errors import ManifestError
    from javabase.manifest.load import load_manifest

    monkeypatch.chdir(str(tmp_path))
    with pytest.raises(ManifestError) as caught:
        load_manifest("nope.yaml")
    assert caught.value.lines() == ["nope.yaml: no such file; pass --manifest PATH"]


def test_committed_manifest_is_valid() -> None:
    from javabase.manifest.load import load_manifest
    from paths import PROJECT_ROOT

    manifest = load_manifest(PROJECT_ROOT / "images.yaml")
    assert sorted(manifest.images) == ["alpine-glibc", "jre11", "jre17", "jre21", "jre21-alpine", "jre25",
                                       "jre25-alpine", "jre8"]
    assert manifest.registry == "repo.abc.com"
    assert manifest.images["alpine-glibc"].from_ref.startswith("alpine:3.22.6@sha256:")
    # glibc is installed verified: the signing key and the three packages, each with its sha256; and the CA
    assert sorted(a.filename for a in manifest.images["alpine-glibc"].artifacts) == [
        "abc-root-ca.crt", "glibc-2.35-r1.apk", "glibc-bin-2.35-r1.apk", "glibc-i18n-2.35-r1.apk", "sgerrand.rsa.pub"]
    assert [i.version for n, i in sorted(manifest.images.items()) if n.startswith("jre") and "alpine" not in n] == [
        "11.0.32_9", "17.0.20_8", "21.0.12_8", "25.0.4_7", "8u502b07"]
    musl = manifest.images["jre21-alpine"]
    assert musl.platforms == ("linux/amd64", "linux/arm64")
    assert [(a.platform, a.sha256[:8]) for a in musl.artifacts] == [("linux/amd64", "9a7f8712"),
                                                                   ("linux/arm64", "a4f70d2b"), (None, "3f7e2503")]
    # what a platform team ships: the company CA everywhere, app (10001) everywhere, fonts on the musl line,
    # and the tests that catch each field report
    for image in manifest.images.values():
        assert [cert.filename for _, cert in manifest.trusted(image)] == ["abc-root-ca.crt"], image.name
        assert (image.user, image.account and image.account.name) == ("10001:10001", "app"), image.name
        assert image.fonts == image.name.endswith("-alpine"), image.name
    names = {name: [t.name for t in image.tests] for name, image in manifest.images.items()}
    assert names["alpine-glibc"][-3:] == ["the loader glibc programs ask for is glibc's",
                                          "glibc looks host names up in /etc/hosts first",
                                          "localhost resolves through glibc's nsswitch"]
    assert names["jre8"][-4:] == ["java -version prints its version", "file.encoding and sun.jnu.encoding are UTF-8",
                                  "the company CA is in cacerts", "the container-aware options reach the JVM"]
    assert "a headless font metric works" in names["jre25-alpine"]


def test_immutable_tags_must_be_tags(problems: Problems) -> None:
    text = BASE.replace('    tags: ["{major}", "{version}"]', '    tags: ["{major}", "{version}"]\n'
                                                                 '    immutable_tags: ["{version}-final"]')
    assert problems(text) == [
        "images.yaml:32: images.jre.immutable_tags[0]: immutable tag '17.0.11_9-final' is not one of the tags of "
        "'jre17' (17, 17.0.11_9); list it under tags too",
        "images.yaml:32: images.jre.immutable_tags[0]: immutable tag '8u412b08-final' is not one of the tags of "
        "'jre8' (8, 8u412b08); list it under tags too",
    ]


def test_immutable_tags_expand_per_version(valid: Callable[[str], Manifest]) -> None:
    text = BASE.replace('    tags: ["{major}", "{version}"]', '    tags: ["{major}", "{version}"]\n'
                                                                 '    immutable_tags: ["{version}"]')
    assert valid(text).images["jre17"].immutable_tags == ("17.0.11_9",)


def test_a_yaml_alias_bomb_is_one_line_not_a_memory_error(problems: Problems) -> None:
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
               f"*a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, 9)]
    text = "schema: 1\nregistry: r\nx-bomb:\n" + "".join(f"  {line}\n" for line in levels) + "images: {}\n"
    assert problems(text) == [
        "images.yaml:4: the document expands to more than 200000 values (YAML aliases that repeat each other?); "
        "write the manifest out without nested aliases"]


def test_a_recursive_alias_is_one_line(problems: Problems) -> None:
    assert problems("schema: 1\nregistry: r\nloop: &loop\n  again: *loop\nimages: {}\n") == [
        "images.yaml:3: a YAML alias refers to a node that contains it (a recursive alias); remove it"]


def test_a_build_arg_that_looks_like_a_secret_is_refused(problems: Problems) -> None:
    text = BASE.replace("    packages: [bash]\n", "    packages: [bash]\n    build_args:\n      NEXUS_PASSWORD: x\n"
                                                  "      MIRROR: https://m.invalid\n")
    assert problems(text) == [
        "images.yaml:17: images.root.build_args.NEXUS_PASSWORD: build arg 'NEXUS_PASSWORD' looks like a secret; its "
        "value would be written into builds/, the build output, the image history and the pushed config. Remove it "
        "(docs/registries.md: Secrets)"]


MULTI = f"""\
schema: 1
registry: repo.abc.com
defaults:
  platforms: [linux/amd64, linux/arm64]
images:
  root:
    from: scratch
    template: rootfs
    artifacts:
      - name: rootfs.tar.gz
        dest: /
        unpack: true
        platforms:
          linux/amd64: {{url: https://example.invalid/amd64.tgz, sha256: {"a" * 64}}}
          linux/arm64: {{url: https://example.invalid/arm64.tgz, sha256: {"b" * 64}}}
    tags: ["1"]
  app:
    from: root
    template: layer
    tags: ["1"]
"""


def test_platforms_and_per_platform_artifacts(valid: Callable[[str], Manifest]) -> None:
    manifest = valid(MULTI)
    root = manifest.images["root"]
    assert root.platforms == ("linux/amd64", "linux/arm64")
    assert [(a.platform, a.filename, a.sha256[0]) for a in root.artifacts_for("linux/arm64")] == [
        ("linux/arm64", "rootfs.tar.gz", "b")]
    assert manifest.images["app"].platforms == ("linux/amd64", "linux/arm64")


@pytest.mark.parametrize(("old", "new", "expected"), [
    ("          linux/arm64: {url: https://example.invalid/arm64.tgz, sha256: " + "b" * 64 + "}\n", "",
     "images.yaml:13: images.root.artifacts[0].platforms: has no file for linux/arm64, which the image is built for "
     "(linux/amd64, linux/arm64); add one"),
    ("  app:\n    from: root\n", "  app:\n    platforms: [linux/amd64, linux/s390x]\n    from: root\n",
     "images.yaml:19: images.app.from: 'root' is built for linux/amd64, linux/arm64, and 'app' needs linux/amd64, "
     "linux/s390x; give both the same `platforms:`"),
    ("      - name: rootfs.tar.gz\n        dest: /\n", "      - dest: /\n",
     "images.yaml:10: images.root.artifacts[0]: the platforms' files have different names (amd64.tgz, arm64.tgz); "
     "give the artifact a `name` for the build context"),
    ("defaults:\n  platforms: [linux/amd64, linux/arm64]\n", "",
     "images.yaml:11: images.root.artifacts[0].platforms: has files per platform, but the image names no "
     "`platforms:`; list the platforms it is built for"),
], ids=["missing-platform", "parent-lacks-platform", "different-names", "no-platforms"])
def test_platform_problems(problems: Problems, old: str, new: str, expected: str) -> None:
    assert old in MULTI
    assert problems(MULTI.replace(old, new)) == [expected]


MULTI_JRE = MULTI + f"""\
  jre:
    from: root
    template: jre
    versions:
      - version: 25.0.2
        home: jdk-25.0.2-jre
        url: https://example.invalid/OpenJDK25U-jre_x64_linux_hotspot_25.0.2.tar.gz
        sha256: {"c" * 64}
    tags: ["{{major}}"]
"""


def test_one_file_for_a_version_of_several_platforms_is_refused(problems: Problems) -> None:
    # README "Adding a JRE version": a single url + sha256 under an entry that inherits two
    # platforms would put the x64 tarball into the arm64 image.
    assert problems(MULTI_JRE) == [
        "images.yaml:25: images.jre.versions[0]: one file (url + sha256) for linux/amd64, linux/arm64: every "
        "platform's image would get the same file; give one per platform, `platforms: {linux/amd64: {url: ..., "
        "sha256: ...}, linux/arm64: {url: ..., sha256: ...}}`, or say `platform_independent: true` when the file is "
        "the same for every platform"]


def test_one_file_for_an_artifact_of_several_platforms_is_refused(problems: Problems) -> None:
    text = MULTI.replace("    template: layer\n", f"    template: layer\n    artifacts:\n      - path: ca.crt\n"
                                                   f"        sha256: {'d' * 64}\n")
    assert problems(text) == [
        "images.yaml:21: images.app.artifacts[0]: one file (path + sha256) for linux/amd64, linux/arm64: every "
        "platform's image would get the same file; give one per platform, `platforms: {linux/amd64: {path: ..., "
        "sha256: ...}, linux/arm64: {path: ..., sha256: ...}}`, or say `platform_independent: true` when the file "
        "is the same for every platform"]


def test_a_platform_independent_file_serves_every_platform(
        valid: Callable[[str], Manifest]) -> None:
    text = MULTI_JRE.replace("        sha256: " + "c" * 64, "        sha256: " + "c" * 64
                             + "\n        platform_independent: true")
    manifest = valid(text)
    jre = manifest.images["jre25"]
    for platform in jre.platforms:
        assert [(a.filename, a.platform) for a in jre.artifacts_for(platform)] == [
            ("OpenJDK25U-jre_x64_linux_hotspot_25.0.2.tar.gz", None)]


def test_one_file_for_one_platform_needs_no_flag(valid: Callable[[str], Manifest]) -> None:
    text = MULTI_JRE.replace("  platforms: [linux/amd64, linux/arm64]\n", "  platforms: [linux/arm64]\n").replace(
        "          linux/amd64: {url: https://example.invalid/amd64.tgz, sha256: " + "a" * 64 + "}\n", "")
    assert valid(text).images["jre25"].platforms == ("linux/arm64",)


def test_files_per_platform_and_platform_independent_together_are_refused(problems: Problems) -> None:
    text = MULTI.replace("        unpack: true\n", "        unpack: true\n        platform_independent: true\n")
    assert problems(text) == [
        "images.yaml:10: images.root.artifacts[0]: has a file per platform and says `platform_independent: true`; "
        "keep one of the two"]


def test_the_readmes_recipe_gives_a_file_per_platform_where_one_file_is_refused(
        problems: Problems, valid: Callable[[str], Manifest]) -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    recipe = readme.split("By hand, add one item")[1].split("\n## ")[0]
    single, per_platform = (re.sub(r"<the [^>]*sha256>", "a" * 64, item)
                            for item in re.findall(r"```yaml\n(.*?)```", recipe, re.DOTALL))
    entry = ("schema: 1\nregistry: repo.abc.com\nimages:\n  jre-alpine:\n    from: alpine:3.22\n"
             "    template: jre\n    platforms: [linux/amd64, linux/arm64]\n    versions:\n{}    tags: [\"1\"]\n")
    assert problems(entry.format(single)) == [
        "images.yaml:9: images.jre-alpine.versions[0]: one file (url + sha256) for linux/amd64, linux/arm64: every "
        "platform's image would get the same file; give one per platform, `platforms: {linux/amd64: {url: ..., "
        "sha256: ...}, linux/arm64: {url: ..., sha256: ...}}`, or say `platform_independent: true` when the file "
        "is the same for every platform"]
    image = valid(entry.format(per_platform)).images["jre-alpine25"]
    assert [a.filename for a in image.artifacts_for("linux/arm64")] == [
        "OpenJDK25U-jre_x64_alpine-linux_hotspot_25.0.5_9.tar.gz"]  # one name in the context: the first platform's
    assert [a.origin.rsplit("/", 1)[1] for a in image.artifacts_for("linux/arm64")] == [
        "OpenJDK25U-jre_aarch64_alpine-linux_hotspot_25.0.5_9.tar.gz"]
