"""CloudTrail: the event history of every management call (:mod:`.service`), its records (:mod:`.events`) and
their request parameters as AWS records them (:mod:`.params`)."""
