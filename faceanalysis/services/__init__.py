"""Writes of face analysis, one module per stage of a frame's life (nothing is re-exported here):

- `capture`: capture sessions and their tokens, and the consent a session's frames need.
- `intake`: frames and videos accepted, their bytes stored, their ids queued.
- `worker`: analysis in the worker, and frames dropped or expired unanalysed.
- `context`: the recount of a session's aggregates and the face context it writes.

The pure mapping from engine results to feature rows is `faceanalysis.features`, reads are
`faceanalysis.selectors`, and sending tasks (with the broker's errors) is `faceanalysis.dispatch`.
"""
