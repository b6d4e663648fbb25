"""JSON API ``/api/v1``: needs, capabilities, matches and pairings for scripts and hub-city systems.

Authentication: a personal API token (``Authorization: Bearer mmk_…``, created on the profile's "API tokens"
page) or, for the app's own pages, the session cookie plus an ``X-CSRFToken`` header on state changes.
The same permission rules as the web pages apply (the models' ``can_*`` methods, ``visible_listings`` and the
listings service layer). The OpenAPI 3.1 document is served at ``/api/v1/openapi.json``.
"""
