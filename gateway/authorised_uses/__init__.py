"""The public list of authorised uses: approved applications whose applicants agreed to
be listed, with what they wrote for the list; consent can be withdrawn at any time."""
