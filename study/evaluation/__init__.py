"""The evaluation stage, between the sweep and the report: each study's chosen configuration
re-trained on evaluation seeds and stored (``stage``, ``reevaluate``), and the LR range test
(``lr_range``). The report reads what this stage stored."""
