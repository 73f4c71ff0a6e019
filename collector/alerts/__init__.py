"""Budgets and alerts evaluated at the collector (docs/budgets.md).

budgets.py   the configured budgets and their windows (day / week / month in the deployment's zone, or rolling hours)
spend.py     what a budget has spent in its window, from the hourly rollup plus raw spans at unaligned edges
fired.py     which threshold crossings fired, persisted so each fires once per window across restarts
webhook.py   signed webhook delivery with retries
evaluator.py the loop tying them together: evaluate, fire once, emit a feed event, a log line and a webhook
"""
