"""Evaluation: fixed training recipes (trainers), curves against random, power-law fits, audits."""
