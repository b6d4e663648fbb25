"""Background indexing of listings: a job table written in the publish/edit/close/delete transaction
(outbox), and the worker that brings the matching index in line with each listing's current state.

Modes (``MATCHMAKER_INDEX_WORKER``): ``thread`` — a daemon thread in each web process, woken by that
process's commits; ``external`` — web processes only enqueue, ``matchmaker worker`` does the work;
``inline`` — processed right after the commit, in the committing thread (the test suite, whose rolled-back
transaction no other connection can see).
"""
