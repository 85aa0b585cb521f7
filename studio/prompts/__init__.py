"""The A1111 prompt language, in plain Python (no torch, no Textual at import).

- `attention`: `(x)`, `((x))`, `(x:1.3)`, `[x]`, escapes and `BREAK` -> weighted fragments.
- `schedule`: prompt editing `[from:to:when]` and alternation `[a|b]` -> the text of each step.
- `chunks`: tokens cut into encoder windows with A1111's comma back-off; live token counts.

The behaviour follows AUTOMATIC1111's wiki (Features: attention/emphasis,
prompt editing, alternating words, infinite prompt length, BREAK). The code is
studio's own.
"""
