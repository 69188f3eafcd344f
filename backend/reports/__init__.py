"""Program reports: the outcomes clinic leadership is judged by.

Layer: the top read model: it reads every domain's records (`facts.py`) and the sync change
feed (`refresh.py`), and defines the measures once (`measures.py`)."""
