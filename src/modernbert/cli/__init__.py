"""The ``modernbert`` command line: ``fill-mask``, ``classify``, ``ner``, ``qa``, ``embed``, ``info``, ``pretrain``.

Examples::

    modernbert fill-mask "The capital of France is [MASK]."
    modernbert classify --model ./my-sentiment-model "What a great film!" "Dull."
    modernbert ner --file sentences.txt --json > entities.jsonl
    modernbert qa --question "Where is the Eiffel tower?" --context "The Eiffel tower is in Paris."
    echo "some text" | modernbert embed --normalize --json
    modernbert info answerdotai/ModernBERT-base
    modernbert pretrain --help

Input (every model subcommand): the texts given as arguments; or ``--file PATH`` with one text per line, or
JSONL (a ``.jsonl`` file, or lines that start with ``{``) whose records carry ``text`` (and ``text_pair`` for
``classify``; ``question`` and ``context`` for ``qa``); or standard input, read like a file when no text is
given and stdin is not a terminal, or where an argument is ``-``. Lines end at ``\\n`` only (a trailing ``\\r``
is dropped); blank lines are skipped; order is kept.

Output: an aligned table, or with ``--json`` one JSON object per input, one per line (JSONL), in input
order; a single input therefore prints a single JSON document. Each object holds the input fields and the
pipeline's per-input result (`Pipeline.run`), unchanged (``predictions``, ``labels``, ``entities``, ``answer``
or ``embedding``).

Exit codes: 0 on success; 2 for bad input (bad arguments, a missing file, empty input, a model that cannot be
loaded, ...) with a one-line ``error: ...`` on stderr; 1 for an unexpected failure (set ``MODERNBERT_DEBUG=1``
for the traceback); 130 when interrupted.

Warnings (of Python and of the ``modernbert`` loggers) are printed as one ``warning: ...`` line each.

Layout: `entry` (the entry point: parser, errors, exit codes), `inputs` (arguments, stdin, text and JSONL
files), `output` (tables, JSON lines and the loop that streams them), `models` (the options every model
subcommand shares, and loading its pipeline), and `commands/`, one module per subcommand, registered in
`commands.COMMANDS`. Heavy imports (torch, the model) happen inside the subcommands' `run`; nothing imported
by ``modernbert --help`` imports torch.
"""

from __future__ import annotations

from .entry import build_parser, main
from .errors import CLIError
from .inputs import Record, gather_inputs
from .output import cell, format_table

__all__ = ["CLIError", "Record", "build_parser", "cell", "format_table", "gather_inputs", "main"]
