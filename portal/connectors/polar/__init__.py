"""The Polar connector (issue 20): a seller on Polar gets Portal on their own domain, in their customers'
language, with Portal's emails; and a way to move off Polar (``portal import polar``)."""
