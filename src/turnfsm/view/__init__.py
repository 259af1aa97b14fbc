"""``turnfsm view``: a session inspector page (the conversation on one time axis, the
chart's states, step records and decision records at a cursor), one self-contained HTML
file."""
