"""fill_doc: shared parameter texts filled into docstrings at the docstring's indent."""

from __future__ import annotations

import inspect

import pytest

from featstore._docs import DOCDICT, fill_doc


def test_a_shared_text_is_filled_at_the_indent_of_a_function_and_of_a_method():
    @fill_doc
    def count(store, group):
        """Count.

        Parameters
        ----------
        %(store)s
        %(group)s
        """

    class Reader:
        @fill_doc
        def read(self, store):
            """Read.

            Parameters
            ----------
            %(store)s
            """

    expected = f"Count.\n\nParameters\n----------\n{DOCDICT['store']}\n{DOCDICT['group']}"
    assert inspect.getdoc(count) == expected
    assert inspect.getdoc(Reader.read) == f"Read.\n\nParameters\n----------\n{DOCDICT['store']}"


def test_a_literal_percent_sign_is_doubled_and_an_unknown_name_fails_at_import():
    @fill_doc
    def drop():
        """%% drop of r."""

    assert drop.__doc__ == "% drop of r."
    with pytest.raises(RuntimeError, match=r"cannot fill the docstring of .*nowhere.*'stores'"):

        @fill_doc
        def nowhere(store):
            """%(stores)s"""


def test_every_filled_public_docstring_lost_its_placeholders():
    import featstore.plot
    import featstore.store

    for package in (featstore.store, featstore.plot):
        for name in package.__all__:
            assert "%(" not in (getattr(package, name).__doc__ or ""), name
