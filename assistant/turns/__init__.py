"""Running turns: the steps of one (`runner`), live delivery and resume (`live`), answer writing (`answer`),
background summaries (`summaries`) and the non-streaming form (`transcript`)."""
