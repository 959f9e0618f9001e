//! Kubeconfigs of other tools' entries, as big as a test or benchmark needs,
//! for the tests and examples that measure or check large files.

/// A realistic `certificate-authority-data` value: about 1.1 kB, as a real CA's.
pub fn realistic_ca_data() -> String {
    "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCk1JSUM".repeat(26)
}

/// A kubeconfig of `count` contexts of other tools, shaped like real ones
/// (each cluster with `ca` as its CA data, token and exec users, namespaces),
/// no anchors.
pub fn other_tools_contexts(count: usize, ca: &str) -> String {
    let mut clusters = String::new();
    let mut users = String::new();
    let mut contexts = String::new();
    for index in 0..count {
        clusters.push_str(&format!(
            "- name: cluster-{index}\n  cluster:\n    server: https://api-{index}.example.com:6443\n    \
             certificate-authority-data: {ca}\n"
        ));
        if index % 2 == 0 {
            users.push_str(&format!("- name: user-{index}\n  user:\n    token: token-{index}\n"));
        } else {
            users.push_str(&format!(
                "- name: user-{index}\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      \
                 command: aws\n      args: [eks, get-token, --cluster-name, c-{index}]\n"
            ));
        }
        contexts.push_str(&format!(
            "- name: context-{index}\n  context:\n    cluster: cluster-{index}\n    user: user-{index}\n    \
             namespace: team-{index}\n"
        ));
    }
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n{clusters}users:\n{users}contexts:\n{contexts}\
         current-context: context-0\npreferences: {{}}\n"
    )
}
