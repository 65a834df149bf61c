"""Stored query id -> the function that answers it (ITI TF-2 §3.18.4.1.2.3.7, §3.51.4.1.2)."""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Connection

from xds.ebrim.vocabulary import StoredQuery
from xds.registry import findqueries as find
from xds.registry import getqueries as get
from xds.registry.context import Registry
from xds.registry.querybase import QueryResult, StoredQueryFn, too_many
from xds.registry.queryparams import QueryParams

__all__ = ["STORED_QUERIES", "run_stored_query"]

#: Every stored query of ITI-18 and ITI-51, by id.
STORED_QUERIES: Mapping[StoredQuery, StoredQueryFn] = {
    StoredQuery.FindDocuments: find.find_documents,
    StoredQuery.FindSubmissionSets: find.find_submission_sets,
    StoredQuery.FindFolders: find.find_folders,
    StoredQuery.GetAll: find.get_all,
    StoredQuery.GetDocuments: get.get_documents,
    StoredQuery.GetFolders: get.get_folders,
    StoredQuery.GetAssociations: get.get_associations,
    StoredQuery.GetDocumentsAndAssociations: get.get_documents_and_associations,
    StoredQuery.GetSubmissionSets: get.get_submission_sets,
    StoredQuery.GetSubmissionSetAndContents: get.get_submission_set_and_contents,
    StoredQuery.GetFolderAndContents: get.get_folder_and_contents,
    StoredQuery.GetFoldersForDocument: get.get_folders_for_document,
    StoredQuery.GetRelatedDocuments: get.get_related_documents,
    StoredQuery.FindDocumentsByReferenceId: find.find_documents_by_reference_id,
    StoredQuery.FindDocumentsForMultiplePatients: find.find_documents_for_multiple_patients,
    StoredQuery.FindFoldersForMultiplePatients: find.find_folders_for_multiple_patients,
}


def run_stored_query(params: QueryParams, conn: Connection, registry: Registry) -> QueryResult:
    """The result of the checked query ``params``, deduplicated and in answer order.

    Raises XdsError ``XDSTooManyResults`` when it would hold more than
    ``settings.max_query_results`` objects.
    """
    result = STORED_QUERIES[params.query](params, conn, registry).ordered()
    if result.count() > registry.settings.max_query_results:
        raise too_many(registry.settings.max_query_results)
    return result
