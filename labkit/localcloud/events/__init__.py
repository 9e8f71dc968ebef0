"""EventBridge: scheduled rules firing on the lab clock (:mod:`.service`, :mod:`.schedules`)."""
