/** What group tests of real agents on loopback do around their tests: a member joins, its VMs go. */
import { call, type AgentProcess } from "./agent-process.js";

/** `member` joins `master`'s group (by its plain address and join token); throws with the answer if refused. */
export async function joinGroup(member: AgentProcess, master: AgentProcess): Promise<void> {
  const joined = await call(`${member.url}/slave/group/join`, {
    token: member.adminToken,
    body: { master: master.url.replace("http://", ""), token: master.joinToken },
  });
  if (joined.status !== 200) throw new Error(`join refused: HTTP ${joined.status}: ${JSON.stringify(joined.body)}`);
}

/** Deletes every VM of `agent` (VMs outlive their agent by design: what a test left must go before cleanup). */
export async function deleteVms(agent: AgentProcess): Promise<void> {
  const vms = await call(`${agent.url}/common/vm/list`, { token: agent.adminToken }).catch(() => ({ body: [] as any[] }));
  for (const vm of Array.isArray(vms.body) ? vms.body : []) {
    await call(`${agent.url}/common/vm/control`, { token: agent.adminToken, body: { vm_id: vm.id, action: "delete" } });
  }
}
