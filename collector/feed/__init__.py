"""The live feed: activities pushed to subscribers within moments of being stored.

    segment writer --(batch stored)--> FeedHub worker --one query per round, every subscriber's
    filter evaluated in it--> events (ids in storage order) --> replay buffer + per-subscriber queues
    --> SSE (GET /v1/feed) / WebSocket (/v1/feed/ws), see collector/serve/feed.py

hub.py finds and routes new rows; subscription.py is one subscriber's bounded queue and running
totals; rows.py is the activity shape (the same as GET /v1/activities).
"""

from .hub import FeedError, FeedHub, FeedSettings
from .subscription import Subscription

__all__ = ["FeedError", "FeedHub", "FeedSettings", "Subscription"]
