"""Redis for the scaled-out deployment: the ``Counters`` role (``counters.py``: rate-limit windows, connection
slots, leases) and the ``PubSub`` role (``pubsub.py``: nudges between instances), over the connections of
``client.py`` and the URL forms of ``urls.py``. All but ``urls.py`` need the ``redis`` extra
(``pip install wildduck[redis]``)."""
