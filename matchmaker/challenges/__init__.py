"""揭榜挂帅: open challenges on a need, with bids, shortlisting and exactly one winner."""
