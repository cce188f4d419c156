"""Tracking: what happened to each document × recipient, judged against the timing rules of Decision 28/2018,
Circular 01/2019 and Decree 30/2020 (edxml.md §13), and the Decision-28 report built from those judgements.

Pure domain: no database, no HTTP. :mod:`.calendar` knows working days, :mod:`.rules` the configurable windows,
:mod:`.facts` the one definition of every tracking figure (:func:`.facts.assess`), :mod:`.report` adds
assessments up per agency and through the hierarchy. The store feeds it rows; services, the CLI, the admin API,
alerts and metrics all read the same :class:`.facts.Assessment`.
"""
