"""Graph plumbing for the rewrites: producer/consumer maps (:class:`Graph`) and the one rewrite
skeleton, :class:`Fusion` (ONNX Runtime's ``onnxruntime.transformers.fusion_base.Fusion``
pattern: for every anchor, ``match`` a subgraph, ``fuse`` it into new nodes, then ``apply``
every fusion at once and drop what became dead)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper, numpy_helper


class _Graph:
    """Producer/consumer maps and initializer lookup over an onnx GraphProto."""

    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.graph = model.graph
        self.inits = {t.name: t for t in self.graph.initializer}
        self.producer: dict[str, onnx.NodeProto] = {}
        self.consumers: dict[str, list[onnx.NodeProto]] = {}
        for node in self.graph.node:
            for out in node.output:
                self.producer[out] = node
            for inp in node.input:
                self.consumers.setdefault(inp, []).append(node)
        self.outputs = {o.name for o in self.graph.output}
        self._counter = 0

    def const(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        node = self.producer.get(name)
        if node is not None and node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    def single_consumer(self, name: str) -> onnx.NodeProto | None:
        users = self.consumers.get(name, [])
        return users[0] if len(users) == 1 and name not in self.outputs else None

    def parent(self, node: onnx.NodeProto, index: int, op_type: str) -> onnx.NodeProto | None:
        if index >= len(node.input):
            return None
        found = self.producer.get(node.input[index])
        return found if found is not None and found.op_type == op_type else None

    def fresh(self, stem: str) -> str:
        self._counter += 1
        return f"opt_{stem}_{self._counter}"

    def add_initializer(self, array: np.ndarray, stem: str) -> str:
        name = self.fresh(stem)
        tensor = numpy_helper.from_array(array, name)
        self.graph.initializer.append(tensor)
        self.inits[name] = tensor
        return name


def _attr(node: onnx.NodeProto, name: str, default=None):
    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _replace_nodes(graph: onnx.GraphProto, remove: set[int], insert: dict[int, list[onnx.NodeProto]]) -> None:
    """Rebuild the node list: drop ids in ``remove``; put ``insert[id]`` where node ``id`` was."""
    nodes = []
    for node in graph.node:
        key = id(node)
        if key in insert:
            nodes.extend(insert[key])
        if key not in remove:
            nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)


def _remove_dead(model: onnx.ModelProto) -> None:
    """Drop nodes whose outputs nobody reads, and unused initializers."""
    graph = model.graph
    changed = True
    while changed:
        used = {o.name for o in graph.output}
        for node in graph.node:
            used.update(node.input)
        keep = [n for n in graph.node if any(o in used for o in n.output if o)]
        changed = len(keep) != len(graph.node)
        if changed:
            del graph.node[:]
            graph.node.extend(keep)
    used = {o.name for o in graph.output}
    for node in graph.node:
        used.update(node.input)
    keep_inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep_inits)


class Fusion:
    """One graph rewrite: ``apply(model)`` rewrites every match in place and returns the count.

    A subclass names its ``anchors`` (op types whose nodes start a match; or overrides
    ``candidates`` to yield anything else, such as tensor names), and implements ``match``
    (returns what ``fuse`` needs, or None) and ``fuse`` (returns the new nodes, the node they
    replace in the node order, and every node they make obsolete). All matches are found on the
    graph as it was, then applied together; unused nodes and initializers are dropped after.
    """

    anchors: tuple[str, ...] = ()

    def candidates(self, g: "_Graph"):
        return [node for node in list(g.graph.node) if node.op_type in self.anchors]

    def match(self, g: "_Graph", candidate):
        raise NotImplementedError

    def fuse(self, g: "_Graph", match) -> tuple[list[onnx.NodeProto], onnx.NodeProto, list[onnx.NodeProto]]:
        raise NotImplementedError

    def finish(self, model: onnx.ModelProto) -> None:
        """After the rewrite, before dead nodes are dropped (e.g. declare an opset)."""

    def apply(self, model: onnx.ModelProto) -> int:
        g = _Graph(model)
        remove: set[int] = set()
        insert: dict[int, list[onnx.NodeProto]] = {}
        count = 0
        for candidate in self.candidates(g):
            found = self.match(g, candidate)
            if found is None:
                continue
            new, at, obsolete = self.fuse(g, found)
            insert.setdefault(id(at), []).extend(new)
            remove.update(id(node) for node in obsolete)
            count += 1
        if count:
            _replace_nodes(g.graph, remove, insert)
            self.finish(model)
            _remove_dead(model)
        return count


Graph = _Graph
