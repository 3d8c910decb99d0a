"""MongoDB adapter: every storage role of the scaled-out deployment on one MongoDB database (GridFS attachments),
correct with any number of instances and without multi-document transactions or atomic increments."""

from wildduck.adapters.mongodb.store import MongoStore, open_mongo_store

__all__ = ["MongoStore", "open_mongo_store"]
