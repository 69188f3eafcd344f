"""The community programs directory: the places a patient is handed off to and booked at.

Layer: a small domain below cases (appointments name programs), consents and handoffs."""
