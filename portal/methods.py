"""The registry methods the portal's pension, health and education pages read and its
actions call (constants only, so that ``zhol.portal.reads.PORTAL_READS`` can list them
without an import cycle)."""

from __future__ import annotations

GET_CONTRIBUTIONS = "/zhol.pension.v1.PensionRegistry/GetContributions"
LIST_CONCLUSIONS = "/zhol.health.v1.HealthRegistry/ListDisabilityConclusions"
LIST_CLINICS = "/zhol.health.v1.HealthRegistry/ListClinics"
ATTACH_TO_CLINIC = "/zhol.health.v1.HealthRegistry/AttachToClinic"
CHANGE_ADDRESS = "/zhol.population.v1.PopulationRegistry/ChangeAddress"
LIST_KINDERGARTENS = "/zhol.education.v1.EducationRegistry/ListKindergartens"
LIST_SCHOOLS = "/zhol.education.v1.EducationRegistry/ListSchools"
ENQUEUE_FOR_KINDERGARTEN = "/zhol.education.v1.EducationRegistry/EnqueueForKindergarten"
WITHDRAW_FROM_QUEUE = "/zhol.education.v1.EducationRegistry/WithdrawFromQueue"
ENROLL_IN_SCHOOL = "/zhol.education.v1.EducationRegistry/EnrollInSchool"
LIST_STUDIES = "/zhol.education.v1.EducationRegistry/ListStudies"
