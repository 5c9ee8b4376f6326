"""Scenario texts the tests write to files. A module of its own, not conftest: `from conftest import ...`
resolves to whichever conftest.py was imported first (tests/ and tests/tools/ both have one)."""

VALID_SCENARIO = """\
id: demo_tip
title: Demo tip
category: function_calling
description: A small valid scenario used by tests.
tools: [calculator]
max_steps: 4
turns:
  - user: What is 15% of 80?
    expect:
      tool_calls:
        mode: strict
        calls:
          - name: calculator
            args:
              expression: {regex: '80'}
      answer:
        - number: 12
solution:
  - tool_calls:
      - name: calculator
        args: {expression: "80 * 0.15"}
    answer: It is 12.
"""
