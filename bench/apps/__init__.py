"""The apps the bench serves: one Flet ``main`` each, hosted two ways."""
