"""Pure parts of `prune` and of the engine's layer sizes: the space a removal frees
is the layers no remaining image uses, each counted once; each history entry that
made a layer gets its size."""

from __future__ import annotations

from javabase.build.backends.docker_sdk import layer_sizes
from javabase.engine import LocalImage
from javabase.release.prune import Removal, chain_ids, with_space


def removal(image_id: str, layers: tuple[str, ...], sizes: tuple[int, ...]) -> Removal:
    return Removal(LocalImage(image_id, layers=layers, layer_sizes=sizes), image_id, "no tag points to it")


def test_a_layer_is_the_same_layer_only_on_the_same_layers() -> None:
    assert chain_ids(["sha256:a"]) == ["sha256:a"]
    on_a, on_b = chain_ids(["sha256:a", "sha256:c"]), chain_ids(["sha256:b", "sha256:c"])
    assert on_a[1] != on_b[1] and on_a[1] == chain_ids(["sha256:a", "sha256:c", "sha256:d"])[1]


def test_a_removal_frees_what_no_remaining_image_uses_and_each_layer_once() -> None:
    root, mid, leaf, other = "sha256:root", "sha256:mid", "sha256:leaf", "sha256:other"
    removals = [removal("new-leaf", (root, mid, leaf), (6_500_000, 2_000_000, 1_000_000)),
                removal("old-leaf", (root, mid, other), (6_500_000, 2_000_000, 500_000))]
    # The root stays (another image uses it); mid is held by both removals: counted once.
    freed = with_space(removals, [(root,), (root, "sha256:kept")])
    assert [(r.image.id, r.frees) for r in freed] == [("new-leaf", 3_000_000), ("old-leaf", 500_000)]
    # Nothing is freed of an image whose every layer a remaining image uses (an image built FROM it).
    assert with_space(removals[:1], [(root, mid, leaf, "sha256:child")])[0].frees == 0


def step(size: int, made_by: str) -> dict[str, object]:
    return {"Size": size, "CreatedBy": made_by}


def test_each_layer_gets_the_size_of_the_history_entry_that_made_it() -> None:
    newest_first = [
        step(0, '/bin/sh -c #(nop)  LABEL io.javabase.image=jre25'),
        step(0, "/bin/sh -c #(nop) WORKDIR /opt"),
        step(0, "java -version"),  # RUN ["java", "-version"]: a layer of 0 bytes
        step(0, "/bin/sh -c #(nop)  ENV JAVA_HOME=/usr/java/jre"),
        step(108_128_024, "/bin/sh -c #(nop) ADD file:21b9 in /usr/java/ "),
        step(0, '/bin/sh -c #(nop)  CMD ["/bin/sh"]'),
        step(483, "/bin/sh -c ldconfig"),
        step(0, "/bin/sh -c #(nop)  ENV PATH=/bin"),
        step(6_544_553, "/bin/sh -c #(nop) ADD file:6f46 in / "),
    ]
    assert layer_sizes(newest_first, 4) == (6_544_553, 483, 108_128_024, 0)
    buildkit = [step(0, "WORKDIR /opt"), step(0, "RUN /bin/sh -c mkdir -p /opt/app # buildkit"),
                step(0, "COPY note.txt /tmp/ # buildkit"), step(0, "ENV A=b")]
    assert layer_sizes(buildkit, 2) == (0, 0)
