"""The official Microsoft Graph beta SDK for Python (msgraph-beta-sdk, on kiota) against
Tenantless's admin API, configured only by a base URL and a token, as a user points it at
a test backend; then as an app signs in to Entra ID: azure-identity's
ClientSecretCredential (MSAL underneath) pointed at Tenantless as its authority. Run by
server/tests/graph_sdk.rs with GRAPH_BASE_URL, GRAPH_TOKEN (also the OAuth client
secret), GRAPH_TENANT, GRAPH_CLIENT_ID and GRAPH_DEVICES (how many devices are enrolled,
named LAB-0000, LAB-0001, ...) and GRAPH_PACKAGE (a .intunewin to upload as packaging
tools do, through contentVersions and the file's upload URI). GRAPH_PHASE=statuses runs
only the last check, once the test has made LAB-0005 report the packaged app installed.
Exits 1 with a message at the first answer that a Graph client would not get from Graph.
"""

import asyncio
import base64
import os
import sys
import xml.etree.ElementTree as ET
import zipfile
from urllib.parse import quote, urlparse

import httpx

from azure.core.exceptions import ClientAuthenticationError
from azure.identity import ClientSecretCredential

from kiota_abstractions.authentication import (
    AccessTokenProvider,
    AllowedHostsValidator,
    BaseBearerTokenAuthenticationProvider,
)
from kiota_abstractions.base_request_configuration import RequestConfiguration
from kiota_abstractions.method import Method
from kiota_abstractions.request_information import RequestInformation
from kiota_serialization_json.json_parse_node_factory import JsonParseNodeFactory
from msgraph_beta import GraphRequestAdapter, GraphServiceClient
from msgraph_beta.generated.device_app_management.mobile_apps.mobile_apps_request_builder import (
    MobileAppsRequestBuilder,
)
from msgraph_beta.generated.device_management.managed_devices.managed_devices_request_builder import (
    ManagedDevicesRequestBuilder,
)
from msgraph_beta.generated.models.managed_device import ManagedDevice
from msgraph_beta.generated.models.o_data_errors.o_data_error import ODataError
from msgraph_beta.generated.device_app_management.mobile_apps.item.assign.assign_post_request_body import (
    AssignPostRequestBody,
)
from msgraph_beta.generated.device_app_management.mobile_apps.item.mobile_app_item_request_builder import (
    MobileAppItemRequestBuilder,
)
from msgraph_beta.generated.models.all_devices_assignment_target import AllDevicesAssignmentTarget
from msgraph_beta.generated.models.install_intent import InstallIntent
from msgraph_beta.generated.models.mobile_app_assignment import MobileAppAssignment
from msgraph_beta.generated.device_management.device_health_scripts.item.assign.assign_post_request_body import (
    AssignPostRequestBody as RemediationAssignBody,
)
from msgraph_beta.generated.device_management.device_management_scripts.item.assign.assign_post_request_body import (
    AssignPostRequestBody as ScriptAssignBody,
)
from msgraph_beta.generated.device_management.device_compliance_policies.item.assign.assign_post_request_body import (
    AssignPostRequestBody as ComplianceAssignBody,
)
from msgraph_beta.generated.models.device_compliance_policy_assignment import (
    DeviceCompliancePolicyAssignment,
)
from msgraph_beta.generated.models.device_compliance_policy_script import (
    DeviceCompliancePolicyScript,
)
from msgraph_beta.generated.models.device_compliance_script import DeviceComplianceScript
from msgraph_beta.generated.models.windows10_compliance_policy import Windows10CompliancePolicy
from msgraph_beta.generated.models.device_health_script import DeviceHealthScript
from msgraph_beta.generated.models.device_health_script_daily_schedule import (
    DeviceHealthScriptDailySchedule,
)
from msgraph_beta.generated.models.device_health_script_assignment import (
    DeviceHealthScriptAssignment,
)
from msgraph_beta.generated.device_management.managed_devices.item.wipe.wipe_post_request_body import (
    WipePostRequestBody,
)
from msgraph_beta.generated.models.device_management_script import DeviceManagementScript
from msgraph_beta.generated.models.device_management_script_assignment import (
    DeviceManagementScriptAssignment,
)
from msgraph_beta.generated.models.run_as_account_type import RunAsAccountType
from msgraph_beta.generated.models.win32_lob_app import Win32LobApp
from msgraph_beta.generated.models.win_get_app import WinGetApp
from msgraph_beta.generated.models.win_get_app_install_experience import (
    WinGetAppInstallExperience,
)
from msgraph_beta.generated.models.mobile_app_content import MobileAppContent
from msgraph_beta.generated.models.mobile_app_install_status import MobileAppInstallStatus
from msgraph_beta.generated.models.resultant_app_state import ResultantAppState
from msgraph_beta.generated.models.mobile_app_content_file import MobileAppContentFile
from msgraph_beta.generated.models.mobile_app_content_file_upload_state import (
    MobileAppContentFileUploadState,
)
from msgraph_beta.generated.models.file_encryption_info import FileEncryptionInfo
from msgraph_beta.generated.device_app_management.mobile_apps.item.graph_win32_lob_app.content_versions.item.files.item.commit.commit_post_request_body import (
    CommitPostRequestBody,
)
from msgraph_beta.generated.devices.devices_request_builder import DevicesRequestBuilder
from msgraph_beta.generated.models.device import Device
from msgraph_beta.generated.models.exclusion_group_assignment_target import (
    ExclusionGroupAssignmentTarget,
)
from msgraph_beta.generated.models.group import Group
from msgraph_beta.generated.models.group_assignment_target import GroupAssignmentTarget
from msgraph_beta.generated.models.reference_create import ReferenceCreate
from msgraph_beta.generated.models.user import User
from msgraph_core import AzureIdentityAuthenticationProvider, PageIterator
from msgraph_core.requests.batch_request_builder import BatchRequestBuilder
from msgraph_core.requests.batch_request_content import BatchRequestContent
from msgraph_core.requests.batch_request_item import BatchRequestItem

BASE = os.environ["GRAPH_BASE_URL"]
TOKEN = os.environ["GRAPH_TOKEN"]
TENANT = os.environ["GRAPH_TENANT"]
CLIENT_ID = os.environ["GRAPH_CLIENT_ID"]
DEVICES = int(os.environ["GRAPH_DEVICES"])


class StaticToken(AccessTokenProvider):
    """The admin API's bearer token (what a test backend's configuration gives)."""

    async def get_authorization_token(self, uri, additional_authentication_context=None):
        return TOKEN

    def get_allowed_hosts_validator(self):
        return AllowedHostsValidator([])


def client():
    adapter = GraphRequestAdapter(BaseBearerTokenAuthenticationProvider(StaticToken()))
    adapter.base_url = BASE
    return GraphServiceClient(request_adapter=adapter)


def expect(ok, what):
    if not ok:
        print(f"FAIL {what}", file=sys.stderr)
        sys.exit(1)
    print(f"ok   {what}")


def devices_query(**params):
    query = ManagedDevicesRequestBuilder.ManagedDevicesRequestBuilderGetQueryParameters(**params)
    return RequestConfiguration(query_parameters=query)


async def main():
    graph = client()
    managed = graph.device_management.managed_devices

    # (The SDK's parsing costs about 10 ms a device with every property: the big reads
    # ask for the properties they use, as a careful script does.)
    page = await managed.get(devices_query(select=["deviceName"]))
    expect(len(page.value) == min(DEVICES, 1000),
           f"lists the devices, Graph's 1000 at most a page ({len(page.value)})")
    expect((page.odata_next_link is None) == (DEVICES <= 1000), "a nextLink when more remain")

    found = await managed.get(devices_query(filter="deviceName eq 'LAB-0007'"))
    names = [d.device_name for d in found.value]
    expect(names == ["LAB-0007"], f"$filter by name finds that device only ({names})")

    found = await managed.get(devices_query(filter="startswith(deviceName,'LAB-001')", count=True))
    expect(found.odata_count == 10, f"$filter startswith and $count ({found.odata_count})")

    selected = await managed.get(devices_query(select=["deviceName"], top=1))
    one = selected.value[0]
    expect(one.device_name is not None and one.operating_system is None,
           "$select keeps only what was asked")

    first = await managed.get(devices_query(top=500, orderby=["deviceName desc"],
                                            select=["deviceName"]))
    expect(first.odata_next_link is not None, "$top leaves a nextLink when more remain")
    seen = []

    def collect(device: ManagedDevice):
        seen.append(device.device_name)
        return True

    iterator = PageIterator(first, graph.request_adapter)
    await iterator.iterate(collect)
    expect(len(seen) == DEVICES and len(set(seen)) == DEVICES,
           f"the page iterator follows nextLink through every device once ({len(seen)})")
    expect(seen[0] == f"LAB-{DEVICES - 1:04}", f"$orderby desc ({seen[0]})")

    tags = await graph.device_management.role_scope_tags.get()
    expect([(t.id, t.display_name, t.is_built_in) for t in tags.value] == [("0", "Default", True)],
           "roleScopeTags holds the Default tag")

    count = await managed.count.get()
    expect(count == DEVICES, f"/$count ({count})")

    try:
        await managed.by_managed_device_id("00000000-0000-0000-0000-00000000dead").get()
        expect(False, "a missing device is an error")
    except ODataError as e:
        code = e.error.code if e.error else None
        message = e.error.message if e.error else None
        expect(code == "ResourceNotFound" and bool(message),
               f"a missing device is an ODataError ResourceNotFound ({code}: {message})")
        expect(e.response_status_code == 404, "with status 404")

    try:
        await managed.get(devices_query(filter="deviceName like 'LAB'"))
        expect(False, "an unsupported $filter is refused")
    except ODataError as e:
        code = e.error.code if e.error else None
        expect(code == "BadRequest", f"an unsupported $filter is a BadRequest, not ignored ({code})")

    everyone = (await managed.get(devices_query(top=20, select=["deviceName"]))).value
    content = BatchRequestContent()
    for i, device in enumerate(everyone[:20]):
        info = managed.by_managed_device_id(device.id).to_get_request_information()
        content.add_request(str(i), BatchRequestItem(info, id=str(i)))
    answers = await BatchRequestBuilder(graph.request_adapter).post(content)
    codes = answers.get_response_status_codes()
    expect(len(codes) == 20 and set(codes.values()) == {200},
           f"a $batch of 20 reads answers each with 200 ({sorted(set(codes.values()))})")
    expect(set(codes) == {str(i) for i in range(20)}, "each batch answer under its request's id")
    # (The SDK's typed reading of a batch answer's body, get_response_by_id(id, Type),
    # fails on Graph's own JSON bodies in msgraph-core 1.5.2, so bodies are checked by
    # server/tests/management.rs instead.)

    target = managed.by_managed_device_id(everyone[0].id)
    await target.sync_device.post()
    await target.reboot_now.post()
    expect(True, "syncDevice and rebootNow are accepted (204)")
    # These wait for a device that is not running here: the commands stay queued.
    await target.remote_lock.post()
    await target.retire.post()
    await target.wipe.post(WipePostRequestBody(keep_enrollment_data=False, keep_user_data=False))
    expect(True, "remoteLock, retire and wipe are accepted (204)")
    discovered = await graph.device_management.detected_apps.get()
    expect(discovered is not None and discovered.value == [],
           "Discovered apps read as detectedApp (none before an inventory)")
    on_device = await target.detected_apps.get()
    expect(on_device is not None and on_device.value == [], "a device's Discovered apps read back")

    app = Win32LobApp(
        display_name="Contoso Widget",
        publisher="Contoso",
        file_name="widget.intunewin",
        setup_file_path="widget.msi",
        install_command_line="msiexec /i widget.msi /qn",
        uninstall_command_line="msiexec /x widget.msi /qn",
    )
    created = await graph.device_app_management.mobile_apps.post(app)
    expect(created is not None and created.id, f"creates a win32LobApp ({created.id if created else None})")
    expect(isinstance(created, Win32LobApp), "answered as a win32LobApp")

    cast = await graph.device_app_management.mobile_apps.graph_win32_lob_app.get()
    expect([a.display_name for a in cast.value] == ["Contoso Widget"],
           "the win32LobApp type-cast segment lists it")
    query = MobileAppsRequestBuilder.MobileAppsRequestBuilderGetQueryParameters(
        filter="isof('microsoft.graph.win32LobApp') and displayName eq 'Contoso Widget'")
    apps = await graph.device_app_management.mobile_apps.get(RequestConfiguration(query_parameters=query))
    expect(len(apps.value) == 1, "$filter with isof on apps")

    item = graph.device_app_management.mobile_apps.by_mobile_app_id(created.id)
    await item.assign.post(AssignPostRequestBody(mobile_app_assignments=[
        MobileAppAssignment(intent=InstallIntent.Required, target=AllDevicesAssignmentTarget())]))
    assigned = await item.assignments.get()
    expect(len(assigned.value) == 1 and assigned.value[0].intent == InstallIntent.Required
           and isinstance(assigned.value[0].target, AllDevicesAssignmentTarget),
           "an assignment made with /assign reads back from /assignments")
    single = await item.assignments.by_mobile_app_assignment_id(assigned.value[0].id).get()
    expect(single.id == assigned.value[0].id and single.intent == InstallIntent.Required,
           "one assignment reads back by its id")
    expanded = await item.get(RequestConfiguration(
        query_parameters=MobileAppItemRequestBuilder.MobileAppItemRequestBuilderGetQueryParameters(
            expand=["assignments"])))
    expect(len(expanded.assignments or []) == 1, "$expand=assignments on an app")
    listed = await graph.device_app_management.mobile_apps.get(RequestConfiguration(
        query_parameters=MobileAppsRequestBuilder.MobileAppsRequestBuilderGetQueryParameters(
            expand=["assignments"])))
    expect(len(listed.value[0].assignments or []) == 1, "$expand=assignments on the apps")
    await item.patch(Win32LobApp(display_name="Contoso Widget 2"))
    again = await item.get()
    expect(again.display_name == "Contoso Widget 2" and again.publisher == "Contoso",
           f"PATCH changes what it names and keeps the rest ({again.display_name})")
    await item.delete()
    try:
        await item.get()
        expect(False, "a deleted app is gone")
    except ODataError as e:
        expect(e.response_status_code == 404, "DELETE removes the app (then 404)")

    await store_app(graph)
    await scripts_and_remediations(graph)
    await custom_compliance(graph)
    await entra_groups(graph)
    await packaged_app(graph)
    await signed_in_like_entra()


async def store_app(graph):
    """A Microsoft Store (new) app, as the admin center adds one from the Store."""
    apps = graph.device_app_management.mobile_apps
    created = await apps.post(WinGetApp(
        display_name="Contoso Notes", publisher="Contoso", package_identifier="9NBLGGH4NNS1",
        install_experience=WinGetAppInstallExperience(run_as_account=RunAsAccountType.System)))
    expect(isinstance(created, WinGetApp) and created.package_identifier == "9NBLGGH4NNS1",
           "a Microsoft Store (new) app (winGetApp) is created and reads back as one")
    again = await apps.by_mobile_app_id(created.id).get()
    expect(isinstance(again, WinGetApp)
           and again.install_experience.run_as_account == RunAsAccountType.System,
           "a winGetApp's install experience reads back")
    await apps.by_mobile_app_id(created.id).delete()


async def scripts_and_remediations(graph):
    scripts = graph.device_management.device_management_scripts
    script = await scripts.post(DeviceManagementScript(
        display_name="Contoso baseline", script_content=b"Write-Host 'baseline'",
        run_as_account=RunAsAccountType.System, file_name="baseline.ps1"))
    expect(script.script_content == b"Write-Host 'baseline'",
           "a platform script's content round-trips as base64")
    one = scripts.by_device_management_script_id(script.id)
    await one.assign.post(ScriptAssignBody(device_management_script_assignments=[
        DeviceManagementScriptAssignment(target=AllDevicesAssignmentTarget())]))
    states = await one.device_run_states.get()
    expect(states is not None and states.value == [], "a script's run states list (none yet)")
    given = await one.assignments.get()
    expect(len(given.value) == 1 and isinstance(given.value[0].target, AllDevicesAssignmentTarget),
           "a script's assignments read back")
    again = await one.assignments.by_device_management_script_assignment_id(given.value[0].id).get()
    expect(again.id == given.value[0].id, "one script assignment reads back by its id")
    try:
        await one.assignments.by_device_management_script_assignment_id("nope").get()
        expect(False, "a missing assignment is an error")
    except ODataError as e:
        expect(e.response_status_code == 404, "a missing script assignment is a 404")

    remediations = graph.device_management.device_health_scripts
    remediation = await remediations.post(DeviceHealthScript(
        display_name="Contoso marker", detection_script_content=b"exit 1",
        remediation_script_content=b"exit 0", run_as_account=RunAsAccountType.System))
    fix = remediations.by_device_health_script_id(remediation.id)
    await fix.assign.post(RemediationAssignBody(device_health_script_assignments=[
        DeviceHealthScriptAssignment(target=AllDevicesAssignmentTarget(),
                                     run_remediation_script=True)]))
    states = await fix.device_run_states.get()
    expect(states is not None and states.value == [], "a remediation's run states list (none yet)")
    given = (await fix.assignments.get()).value
    expect(len(given) == 1 and given[0].run_remediation_script is True
           and isinstance(given[0].run_schedule, DeviceHealthScriptDailySchedule)
           and given[0].run_schedule.interval == 1,
           "a remediation's assignment reads back with its daily schedule")

    await one.delete()
    await fix.delete()
    left = (await scripts.get()).value + (await remediations.get()).value
    expect(left == [], "DELETE removes scripts and remediations")


async def custom_compliance(graph):
    """A discovery script and a Windows compliance policy with rules, as the admin center
    makes them; the device's policy states and compliance read back."""
    scripts = graph.device_management.device_compliance_scripts
    script = await scripts.post(DeviceComplianceScript(
        display_name="Contoso firewall discovery", publisher="Contoso IT",
        detection_script_content=b"@{ Firewall = $true } | ConvertTo-Json -Compress",
        run_as_account=RunAsAccountType.System))
    expect(script.id and script.detection_script_content.startswith(b"@{ Firewall"),
           "a discovery script's content round-trips as base64")
    rules = (b'{"Rules":[{"SettingName":"Firewall","Operator":"IsEquals","DataType":"Boolean",'
             b'"Operand":true,"MoreInfoUrl":"https://contoso.example/firewall",'
             b'"RemediationStrings":[{"Language":"en_US","Title":"The firewall is off.",'
             b'"Description":"Turn it on."}]}]}')
    policies = graph.device_management.device_compliance_policies
    policy = await policies.post(Windows10CompliancePolicy(
        display_name="Contoso firewall",
        device_compliance_policy_script=DeviceCompliancePolicyScript(
            device_compliance_script_id=script.id, rules_content=rules)))
    expect(isinstance(policy, Windows10CompliancePolicy)
           and policy.device_compliance_policy_script.rules_content == rules,
           "a Windows compliance policy with custom compliance reads back")
    one = policies.by_device_compliance_policy_id(policy.id)
    given = await one.assign.post(ComplianceAssignBody(assignments=[
        DeviceCompliancePolicyAssignment(target=AllDevicesAssignmentTarget())]))
    expect(given is not None and len(given.value) == 1,
           "a compliance policy's assign answers its assignments")
    statuses = await one.device_statuses.get()
    expect(statuses is not None and statuses.value == [],
           "a compliance policy's device statuses list (none reported yet)")
    try:
        await scripts.by_device_compliance_script_id(script.id).delete()
        expect(False, "a discovery script in use cannot be deleted")
    except ODataError as e:
        expect(e.response_status_code == 409, "deleting a discovery script in use is a 409")
    device = (await graph.device_management.managed_devices.get(
        devices_query(select=["id", "complianceState"], top=1))).value[0]
    expect(device.compliance_state is not None, "a managed device has a complianceState")
    states = await graph.device_management.managed_devices.by_managed_device_id(
        device.id).device_compliance_policy_states.get()
    expect(states is not None, "a device's compliance policy states list")
    await one.delete()
    await scripts.by_device_compliance_script_id(script.id).delete()
    left = (await policies.get()).value + (await scripts.get()).value
    expect(left == [], "DELETE removes the policy, then its discovery script")


async def entra_groups(graph):
    """A security group with a device and a user by reference, as real tenants target."""
    pilot = await graph.groups.post(Group(display_name="Pilot devices", mail_enabled=False,
                                          mail_nickname="pilot", security_enabled=True))
    expect(pilot is not None and pilot.id and pilot.security_enabled,
           f"creates a security group ({pilot.id if pilot else None})")
    query = DevicesRequestBuilder.DevicesRequestBuilderGetQueryParameters(
        filter="displayName eq 'LAB-0003'")
    found = (await graph.devices.get(RequestConfiguration(query_parameters=query))).value
    expect(len(found) == 1 and isinstance(found[0], Device) and found[0].device_id,
           "finds a device's Entra object by name")
    managed = await graph.device_management.managed_devices.by_managed_device_id(
        found[0].device_id).get()
    expect(managed.azure_a_d_device_id == found[0].device_id,
           "the managed device's azureADDeviceId is the Entra device's deviceId")
    members = graph.groups.by_group_id(pilot.id).members
    await members.ref.post(ReferenceCreate(
        odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{found[0].id}"))
    await members.ref.post(ReferenceCreate(
        odata_id="https://graph.microsoft.com/v1.0/users/ada@contoso.com"))
    listed = (await members.get()).value
    kinds = sorted(type(m).__name__ for m in listed)
    expect(kinds == ["Device", "User"], f"members read back as a device and a user ({kinds})")
    try:
        await members.ref.post(ReferenceCreate(
            odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{found[0].id}"))
        expect(False, "a member added twice is an error")
    except ODataError as e:
        expect(e.response_status_code == 400, "a member added twice is a 400")
    held = await graph.groups.post(Group(display_name="Held back", mail_enabled=False,
                                         mail_nickname="held", security_enabled=True))

    app = await graph.device_app_management.mobile_apps.post(Win32LobApp(
        display_name="Pilot Widget", file_name="pilot.intunewin", setup_file_path="pilot.msi",
        install_command_line="msiexec /i pilot.msi /qn"))
    item = graph.device_app_management.mobile_apps.by_mobile_app_id(app.id)
    await item.assign.post(AssignPostRequestBody(mobile_app_assignments=[
        MobileAppAssignment(intent=InstallIntent.Required,
                            target=GroupAssignmentTarget(group_id=pilot.id)),
        MobileAppAssignment(intent=InstallIntent.Required,
                            target=ExclusionGroupAssignmentTarget(group_id=held.id))]))
    targets = [a.target for a in (await item.assignments.get()).value]
    expect(len(targets) == 2 and isinstance(targets[0], GroupAssignmentTarget)
           and targets[0].group_id == pilot.id
           and isinstance(targets[1], ExclusionGroupAssignmentTarget),
           "group and exclusion-group assignments read back typed")

    await members.by_directory_object_id(found[0].id).ref.delete()
    left = (await members.get()).value
    expect([type(m) for m in left] == [User], "DELETE .../members/{id}/$ref removes the device")
    await item.delete()
    await graph.groups.by_group_id(held.id).delete()
    names = [g.display_name for g in (await graph.groups.get()).value]
    expect(names == ["Pilot devices"], f"DELETE removes a group ({names})")


async def settled(file, state):
    """The content file once the service reached `state` (polled, as tools do)."""
    for _ in range(20):
        got = await file.get()
        if got.upload_state == state:
            return got
        await asyncio.sleep(0.1)
    return got


async def packaged_app(graph):
    """A packaging pipeline's upload of a .intunewin: a content version, a file, the
    encrypted file put in blocks to the file's upload URI, commit with Detection.xml's
    encryption info, committedContentVersion; then required to a group with a device."""
    with zipfile.ZipFile(os.environ["GRAPH_PACKAGE"]) as package:
        detection = ET.fromstring(package.read("IntuneWinPackage/Metadata/Detection.xml"))
        encrypted = package.read("IntuneWinPackage/Contents/IntunePackage.intunewin")
    app = await graph.device_app_management.mobile_apps.post(Win32LobApp(
        display_name="Contoso Packaged", file_name="packaged.intunewin",
        setup_file_path=detection.findtext("SetupFile"),
        install_command_line="msiexec /i setup.msi /qn"))
    typed = graph.device_app_management.mobile_apps.by_mobile_app_id(app.id).graph_win32_lob_app
    version = await typed.content_versions.post(MobileAppContent())
    expect(version.id == "1", f"a content version is added ({version.id})")
    files = typed.content_versions.by_mobile_app_content_id(version.id).files
    declared = await files.post(MobileAppContentFile(
        name=detection.findtext("FileName"), is_dependency=False,
        size=int(detection.findtext("UnencryptedContentSize")), size_encrypted=len(encrypted)))
    file = files.by_mobile_app_content_file_id(declared.id)
    ready = await settled(file, MobileAppContentFileUploadState.AzureStorageUriRequestSuccess)
    expect(ready.azure_storage_uri, "the file's upload URI is handed out")

    block = 1 << 20
    ids = []
    async with httpx.AsyncClient(verify=os.environ["SSL_CERT_FILE"]) as storage:
        for at in range(0, len(encrypted), block):
            block_id = base64.b64encode(f"block-{len(ids):04d}".encode()).decode()
            answer = await storage.put(
                f"{ready.azure_storage_uri}&comp=block&blockid={quote(block_id, safe='')}",
                content=encrypted[at:at + block], headers={"x-ms-blob-type": "BlockBlob"})
            expect(answer.status_code == 201, f"block {len(ids)} is put ({answer.status_code})")
            ids.append(block_id)
        listed = "".join(f"<Latest>{i}</Latest>" for i in ids)
        answer = await storage.put(
            f"{ready.azure_storage_uri}&comp=blocklist",
            content=f'<?xml version="1.0" encoding="utf-8"?><BlockList>{listed}</BlockList>')
        expect(answer.status_code == 201, f"the block list of {len(ids)} blocks is put")

    await file.renew_upload.post()
    renewed = await settled(file, MobileAppContentFileUploadState.AzureStorageUriRenewalSuccess)
    expect(renewed.azure_storage_uri_expiration_date_time is not None, "renewUpload renews the URI")
    info = detection.find("EncryptionInfo")
    raw = lambda name: base64.b64decode(info.findtext(name))
    await file.commit.post(CommitPostRequestBody(file_encryption_info=FileEncryptionInfo(
        encryption_key=raw("EncryptionKey"), mac_key=raw("MacKey"),
        initialization_vector=raw("InitializationVector"), mac=raw("Mac"),
        profile_identifier=info.findtext("ProfileIdentifier"), file_digest=raw("FileDigest"),
        file_digest_algorithm=info.findtext("FileDigestAlgorithm"))))
    committed = await settled(file, MobileAppContentFileUploadState.CommitFileSuccess)
    expect(committed.upload_state == MobileAppContentFileUploadState.CommitFileSuccess
           and committed.is_committed, "commit checks the upload: commitFileSuccess")
    item = graph.device_app_management.mobile_apps.by_mobile_app_id(app.id)
    await item.patch(Win32LobApp(committed_content_version=version.id))
    again = await item.get()
    expect(again.committed_content_version == "1", "committedContentVersion is set")

    group = await graph.groups.post(Group(display_name="Packaged pilot", mail_enabled=False,
                                          mail_nickname="packaged", security_enabled=True))
    query = DevicesRequestBuilder.DevicesRequestBuilderGetQueryParameters(
        filter="displayName eq 'LAB-0005'")
    device = (await graph.devices.get(RequestConfiguration(query_parameters=query))).value[0]
    await graph.groups.by_group_id(group.id).members.ref.post(ReferenceCreate(
        odata_id=f"https://graph.microsoft.com/v1.0/directoryObjects/{device.id}"))
    await item.assign.post(AssignPostRequestBody(mobile_app_assignments=[
        MobileAppAssignment(intent=InstallIntent.Required,
                            target=GroupAssignmentTarget(group_id=group.id))]))
    await graph.device_management.managed_devices.by_managed_device_id(
        device.device_id).sync_device.post()
    expect(True, "the packaged app is required for a group holding LAB-0005, which is synced")


async def signed_in_like_entra():
    """An app's credential, as for Graph, with Tenantless as the authority."""
    host = urlparse(BASE).netloc
    credential = ClientSecretCredential(TENANT, CLIENT_ID, TOKEN, authority=f"https://{host}",
                                        disable_instance_discovery=True)
    token = credential.get_token("https://graph.microsoft.com/.default")
    expect(token.token.count(".") == 2 and token.token != TOKEN,
           "ClientSecretCredential gets a JWT from the token endpoint")
    # The SDK sends tokens only to the hosts it is told of (Graph's, by default).
    provider = AzureIdentityAuthenticationProvider(
        credential, scopes=["https://graph.microsoft.com/.default"],
        allowed_hosts=[urlparse(BASE).hostname])
    adapter = GraphRequestAdapter(provider)
    adapter.base_url = BASE
    graph = GraphServiceClient(request_adapter=adapter)
    count = await graph.device_management.managed_devices.count.get()
    expect(count == DEVICES, f"the SDK signed in with that credential lists the devices ({count})")

    wrong = ClientSecretCredential(TENANT, CLIENT_ID, "not-the-secret", authority=f"https://{host}",
                                   disable_instance_discovery=True)
    try:
        wrong.get_token("https://graph.microsoft.com/.default")
        expect(False, "a wrong client secret gets no token")
    except ClientAuthenticationError as e:
        expect("AADSTS7000215" in str(e), "a wrong client secret is Entra's invalid_client (AADSTS7000215)")


async def statuses():
    """The packaged app's install state per device, once LAB-0005 reported it."""
    graph = client()
    query = MobileAppsRequestBuilder.MobileAppsRequestBuilderGetQueryParameters(
        filter="displayName eq 'Contoso Packaged'")
    app = (await graph.device_app_management.mobile_apps.get(
        RequestConfiguration(query_parameters=query))).value[0]
    # The SDK has the model (mobileAppInstallStatus) but no request builder for this
    # relationship, so the request is made through its adapter and parsed by its models.
    info = RequestInformation(Method.GET)
    info.url = f"{BASE}/deviceAppManagement/mobileApps/{app.id}/deviceStatuses"
    info.headers.try_add("Accept", "application/json")
    raw = await graph.request_adapter.send_primitive_async(info, "bytes", None)
    node = JsonParseNodeFactory().get_root_parse_node("application/json", raw)
    states = node.get_child_node("value").get_collection_of_object_values(MobileAppInstallStatus)
    got = [(s.device_name, s.install_state) for s in states]
    expect(got == [("LAB-0005", ResultantAppState.Installed)],
           f"deviceStatuses shows the packaged app installed on LAB-0005 ({got})")


asyncio.run(statuses() if os.environ.get("GRAPH_PHASE") == "statuses" else main())
