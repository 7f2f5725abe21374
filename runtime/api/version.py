"""The Docker Engine API versions berthd serves (the `/v1.NN` prefix, `Api-Version` header)."""

API_VERSION = "1.44"
MIN_API_VERSION = "1.24"
