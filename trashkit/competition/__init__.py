"""The class competition (``python -m trashkit competition``): hidden test labels, scoring on
the server, public and private leaderboards, one machine, one command.

One concept per module:

* :mod:`.rules`       -- ``competition create``: the folder, the hidden split, ``rules.json``;
* :mod:`.tokens`      -- team and admin tokens (random, stored hashed);
* :mod:`.store`       -- the database tables (SQLite WAL by default, PostgreSQL by URL);
* :mod:`.teams`       -- team names and tokens;
* :mod:`.errors`      -- ``Refused``: the one error a student sees;
* :mod:`.checks`      -- refusals before anything is stored (size, zip bomb, pickle, rules);
* :mod:`.onnx_checks` -- ONNX: one file, standard operators, shapes at the input size;
* :mod:`.macs_onnx`   -- multiply-adds of Conv, Gemm and MatMul in an ONNX graph;
* :mod:`.intake`      -- the daily quota and storing an accepted upload;
* :mod:`.queue`       -- the job queue in the database: claims, leases, exactly-once results;
* :mod:`.runner`      -- the model process, with time and memory limits;
* :mod:`.inference`   -- what runs inside it: predictions, MACs, time per image;
* :mod:`.grading`     -- hidden labels, public and private macro-F1 and scores;
* :mod:`.worker`      -- claim, score, write, loop;
* :mod:`.phase`       -- open or closed, private leaderboard hidden or shown;
* :mod:`.board`       -- leaderboards, a team's history, final picks;
* :mod:`.server`      -- the web server (tornado, server-rendered pages, no JavaScript);
* :mod:`.client`      -- ``submit(server, token, checkpoint)`` for students;
* :mod:`.audit`       -- re-running a team's training from its config;
* :mod:`.sample`      -- a rehearsal competition on the synthetic default;
* :mod:`.cli`         -- the ``competition`` sub-commands.
"""

from __future__ import annotations

from .client import SubmissionError, submit

__all__ = ["SubmissionError", "submit"]
