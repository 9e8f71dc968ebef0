"""IAM: every request signed by a principal and authorized against its policies (:mod:`.service`, :mod:`.auth`),
the principals and their policies (:mod:`.principals`; the evaluator is :mod:`labkit.iam_policy`, which labkit
shares), signatures (:mod:`.signing`), the resource a request is authorized on (:mod:`.resources`), AWS managed
policies on demand (:mod:`.managed_policies`)."""
