"""agentbench: a testbed for choosing the open LLMs to build an agent on."""

__version__ = "0.1.0"
