"""The ``%%sparql`` cell magic (``%load_ext echoes_lab.knowledge``)."""

from __future__ import annotations

from IPython.core.magic import Magics, cell_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from echoes_lab.knowledge.store import KnowledgeError


@magics_class
class SparqlMagics(Magics):
    @magic_arguments()
    @argument("graph", nargs="?", default=None,
              help="the variable holding the KnowledgeGraph (default: knowledge.open())")
    @argument("-o", "--output", default=None, help="also store the result in this variable")
    @cell_magic
    def sparql(self, line: str, cell: str):
        """Run the cell as a SPARQL query; the result is a DataFrame (ASK: a bool)."""
        from echoes_lab import knowledge

        args = parse_argstring(self.sparql, line)
        if args.graph:
            kg = self.shell.user_ns.get(args.graph)
            if not isinstance(kg, knowledge.KnowledgeGraph):
                msg = (f"{args.graph!r} is not a knowledge graph in this notebook: "
                       "kg = knowledge.open() first, then %%sparql kg")
                raise KnowledgeError(msg)
        else:
            kg = knowledge.open()
        result = kg.query(cell)
        if args.output:
            self.shell.user_ns[args.output] = result
        return result
